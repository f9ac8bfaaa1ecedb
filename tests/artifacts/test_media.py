"""`log_figure` and `log_image` with real matplotlib, plotly, Pillow and numpy objects, as MLflow scripts call them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import gitml as mlflow
from gitml.exceptions import InvalidParameterValue, MissingDependency

np = pytest.importorskip("numpy", reason="numpy is needed for images")
PIL_Image = pytest.importorskip("PIL.Image", reason="Pillow is needed to read images back")


def _local(run_id: str, path: str) -> Path:
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=f"runs:/{run_id}/{path}"))


@pytest.fixture
def plt():  # type: ignore[no-untyped-def]
    matplotlib = pytest.importorskip("matplotlib", reason="matplotlib is needed for figures")
    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    yield pyplot
    pyplot.close("all")


def test_matplotlib_figures(repo: Path, plt) -> None:  # type: ignore[no-untyped-def]
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1, 2], [2, 1, 3])
    with mlflow.start_run() as run:
        mlflow.log_figure(fig, "figure.png")
        mlflow.log_figure(fig, "plots/figure.svg")
        mlflow.log_figure(fig, "plots/figure.pdf")
        mlflow.log_figure(ax, "plots/from_axes.png")  # an Axes: its figure is logged
        mlflow.log_figure(fig, "plots/big.png", save_kwargs={"dpi": 200})
        with pytest.raises(InvalidParameterValue, match="figure.xyz"):
            mlflow.log_figure(fig, "figure.xyz")
    rid = run.info.run_id
    with PIL_Image.open(_local(rid, "figure.png")) as img:
        assert img.size == (400, 300)  # 4x3 inches at matplotlib's 100 dpi
    with PIL_Image.open(_local(rid, "plots/big.png")) as img:
        assert img.size == (800, 600)
    assert b"<svg" in _local(rid, "plots/figure.svg").read_bytes()
    assert _local(rid, "plots/figure.pdf").read_bytes().startswith(b"%PDF")
    assert _local(rid, "plots/from_axes.png").read_bytes().startswith(b"\x89PNG")


def test_plotly_figures(repo: Path) -> None:
    go = pytest.importorskip("plotly.graph_objects", reason="plotly is needed for plotly figures")
    fig = go.Figure(data=go.Scatter(x=[1, 2, 3], y=[4, 1, 2]))
    with mlflow.start_run() as run:
        mlflow.log_figure(fig, "figure.html")
        with pytest.raises(InvalidParameterValue, match="html"):
            mlflow.log_figure(fig, "figure.txt")
        if importlib.util.find_spec("kaleido") is None:
            with pytest.raises(MissingDependency, match="kaleido"):
                mlflow.log_figure(fig, "figure.png")
    html = _local(run.info.run_id, "figure.html").read_text()
    assert "plotly" in html and "cdn.plot.ly" in html  # plotly.js from its CDN, as MLflow writes it
    assert [f.path for f in mlflow.MlflowClient().list_artifacts(run.info.run_id)] == ["figure.html"]


def test_not_a_figure(repo: Path) -> None:
    with mlflow.start_run():
        with pytest.raises(InvalidParameterValue, match="matplotlib Figure"):
            mlflow.log_figure([1, 2, 3], "figure.png")


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.arange(12, dtype=np.uint8).reshape(3, 4), np.arange(12, dtype=np.uint8).reshape(3, 4)),
        (np.full((2, 3, 3), 255, dtype=np.int64), np.full((2, 3, 3), 255, dtype=np.uint8)),
        (np.ones((2, 2, 4)), np.full((2, 2, 4), 255, dtype=np.uint8)),
        (np.zeros((2, 2, 1), dtype=np.float32), np.zeros((2, 2), dtype=np.uint8)),
        (np.array([[True, False]]), np.array([[255, 0]], dtype=np.uint8)),
    ],
)
def test_numpy_images_round_trip(repo: Path, array: object, expected: object) -> None:
    with mlflow.start_run() as run:
        mlflow.log_image(array, "images/img.png")
    with PIL_Image.open(_local(run.info.run_id, "images/img.png")) as img:
        assert np.array_equal(np.asarray(img), expected)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.full((2, 2), 1.5), r"\[0, 1\]"),
        (np.full((2, 2), -1, dtype=np.int16), r"\[0, 255\]"),
        (np.full((2, 2), 300), r"\[0, 255\]"),
        (np.zeros((2, 2, 2)), "HxW"),
        (np.zeros((1, 2, 2, 3)), "HxW"),
        (np.array([["a"]]), "booleans, integers or floats"),
    ],
)
def test_bad_numpy_images(repo: Path, array: object, message: str) -> None:
    with mlflow.start_run() as run:
        with pytest.raises(InvalidParameterValue, match=message):
            mlflow.log_image(array, "bad.png")
    assert mlflow.MlflowClient().list_artifacts(run.info.run_id) == []


def test_pillow_images_and_formats(repo: Path) -> None:
    rgb = PIL_Image.new("RGB", (5, 4), (10, 20, 30))
    with mlflow.start_run() as run:
        mlflow.log_image(rgb, "image.png")
        mlflow.log_image(rgb, "image.jpg")
        mlflow.log_image(np.zeros((4, 5, 3), dtype=np.uint8), "array.webp")
        mlflow.MlflowClient().log_image(run.info.run_id, rgb, "client/image.png")
        with pytest.raises(InvalidParameterValue, match="image.nope"):
            mlflow.log_image(rgb, "image.nope")
    rid = run.info.run_id
    for path, fmt in [("image.png", "PNG"), ("image.jpg", "JPEG"), ("array.webp", "WEBP"), ("client/image.png", "PNG")]:
        with PIL_Image.open(_local(rid, path)) as img:
            assert img.format == fmt and img.size == (5, 4)
    with PIL_Image.open(_local(rid, "image.png")) as img:
        assert img.getpixel((0, 0)) == (10, 20, 30)


def test_png_without_pillow_matches_pillow() -> None:
    import io

    from gitml.artifacts.media import png_bytes

    array = np.random.default_rng(0).integers(0, 256, size=(7, 9, 3), dtype=np.uint8)
    with PIL_Image.open(io.BytesIO(png_bytes(array))) as img:
        assert np.array_equal(np.asarray(img), array)


_STEP_NAME = r"images/(.+)\+step\+(\d+)\+timestamp\+(\d+)\+([0-9a-f-]{36})(\+compressed)?\.(png|webp)"


def test_step_indexed_images_follow_mlflows_layout(repo: Path) -> None:
    import re
    import time

    wide = (np.arange(64 * 100 * 3) % 256).astype(np.uint8).reshape(64, 100, 3)
    tall = PIL_Image.new("RGB", (30, 600), (1, 2, 3))
    client = mlflow.MlflowClient()
    before = int(time.time() * 1000)
    with mlflow.start_run() as run:
        mlflow.log_image(wide, key="samples/train", step=3)
        mlflow.log_image(wide, key="samples/train", step=4, timestamp=1_700_000_000_000)
        mlflow.log_image(tall, key="tall one")  # step 0, now
        mlflow.log_image(wide, "static/keep.png")  # the artifact_file path, as before
        client.log_image(run.info.run_id, wide, key="from client", step=7, synchronous=False)
    rid = run.info.run_id
    assert client.get_run(rid).data.tags["mlflow.loggedImages"] == "True"
    names = sorted(f.path for f in client.list_artifacts(rid, "images"))
    assert len(names) == 8
    found: dict[tuple[str, int], dict[str, str]] = {}
    for name in names:
        m = re.fullmatch(_STEP_NAME, name)
        assert m, name
        key, step, stamp, _, compressed, ext = m.groups()
        assert (ext == "webp") == bool(compressed)
        found.setdefault((key, int(step)), {})[ext] = name
        if key == "samples~train" and step == "4":
            assert stamp == "1700000000000"
        else:
            assert before <= int(stamp) <= int(time.time() * 1000)
    assert set(found) == {("samples~train", 3), ("samples~train", 4), ("tall one", 0), ("from client", 7)}
    with PIL_Image.open(_local(rid, found[("samples~train", 3)]["png"])) as img:
        assert img.format == "PNG" and img.size == (100, 64)
        assert np.array_equal(np.asarray(img), wide)  # the full image, lossless
    with PIL_Image.open(_local(rid, found[("samples~train", 3)]["webp"])) as img:
        assert img.format == "WEBP" and img.size == (256, 163)  # fits a 256 square, aspect kept
    with PIL_Image.open(_local(rid, found[("tall one", 0)]["webp"])) as img:
        assert img.size == (12, 256)
    assert _local(rid, "static/keep.png").is_file()
    # the two files of one call share their uuid; two calls never do
    uuids = {re.fullmatch(_STEP_NAME, n).group(4) for n in names}  # type: ignore[union-attr]
    assert len(uuids) == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"artifact_file": "a.png", "key": "k"}, "artifact_file alone"),
        ({"artifact_file": "a.png", "step": 1}, "artifact_file alone"),
        ({"artifact_file": "a.png", "timestamp": 1}, "artifact_file alone"),
        ({}, "needs artifact_file .* or key"),
        ({"step": 2}, "needs artifact_file .* or key"),
        ({"key": "bad:key"}, "may only hold letters"),
        ({"key": "../up"}, None),  # dots and slashes are allowed: `/` becomes `~`, no folder
        ({"key": "k" * 151}, "at most 150"),
        ({"key": "k", "step": "x"}, "image step"),
        ({"key": "k", "step": 2**64}, "64-bit"),
    ],
)
def test_step_image_arguments(repo: Path, kwargs: dict[str, object], message: str | None) -> None:
    client = mlflow.MlflowClient()
    with mlflow.start_run() as run:
        if message is None:
            mlflow.log_image(np.zeros((2, 2), dtype=np.uint8), **kwargs)  # type: ignore[arg-type]
            [name] = [f.path for f in client.list_artifacts(run.info.run_id, "images") if f.path.endswith(".png")]
            assert name.startswith("images/..~up+step+0+")
            return
        with pytest.raises(InvalidParameterValue, match=message):
            mlflow.log_image(np.zeros((2, 2), dtype=np.uint8), **kwargs)  # type: ignore[arg-type]
    assert client.list_artifacts(run.info.run_id) == []
    assert "mlflow.loggedImages" not in client.get_run(run.info.run_id).data.tags


def test_bad_arguments_start_no_run(repo: Path) -> None:
    with pytest.raises(InvalidParameterValue, match="artifact_file alone"):
        mlflow.log_image(np.zeros((2, 2), dtype=np.uint8), "a.png", key="k")
    assert mlflow.active_run() is None
