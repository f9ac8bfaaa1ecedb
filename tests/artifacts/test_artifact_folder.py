"""`get_artifact_uri()` as a folder, as MLflow's local store gives one, with `runs:/` URIs still working."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import pytest

import gitml as mlflow
from gitml.artifacts.staging import staged_runs_uri
from gitml.exceptions import InvalidParameterValue


def _path(uri: str) -> Path:
    return Path(urlparse(uri).path)


def _listing(run_id: str, path: str | None = None) -> list[str]:
    return [f.path for f in mlflow.MlflowClient().list_artifacts(run_id, path)]


def test_a_script_writes_into_the_artifact_folder(repo: Path) -> None:
    with mlflow.start_run() as run:
        uri = mlflow.get_artifact_uri()
        assert uri.startswith("file:///")
        folder = Path(uri.replace("file://", ""))  # the usual MLflow-script idiom
        assert folder.is_dir()
        (folder / "notes.txt").write_text("lr=0.1")
        os.makedirs(os.path.join(folder, "checkpoints"))
        for epoch in range(3):  # a checkpoint callback writing each epoch
            (folder / "checkpoints" / f"epoch{epoch}.pt").write_bytes(bytes([epoch]) * 10)
        mlflow.log_text("logged the usual way", "other.txt")
    rid = run.info.run_id
    assert _listing(rid) == ["checkpoints", "notes.txt", "other.txt"]
    assert _listing(rid, "checkpoints") == [f"checkpoints/epoch{i}.pt" for i in range(3)]
    assert mlflow.artifacts.load_text(f"runs:/{rid}/notes.txt") == "lr=0.1"
    assert not folder.exists()  # the staging folder goes once its files are logged
    assert mlflow.get_run(rid).info.artifact_uri == f"runs:/{rid}"  # what the branch records


def test_logged_artifacts_read_back_from_the_folder(repo: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_text("hello", "dir/a.txt")
        mlflow.log_dict({"k": 1}, "dir/b.json")
        a = _path(mlflow.get_artifact_uri("dir/a.txt"))
        assert a.read_text() == "hello"
        folder = _path(mlflow.get_artifact_uri("dir"))
        assert sorted(os.listdir(folder)) == ["a.txt", "b.json"]
        assert _path(mlflow.get_artifact_uri()) == folder.parent
        # a path nothing was logged at: a place to write to, as in MLflow
        new = _path(mlflow.get_artifact_uri("later/model.bin"))
        assert not new.exists() and new.parent.is_dir()
        new.write_bytes(b"weights")
    assert mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/dir/a.txt") == "hello"
    assert _listing(run.info.run_id, "later") == ["later/model.bin"]


def test_the_scripts_writes_win_and_untouched_copies_do_not_overwrite_later_logs(repo: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_text("v1", "kept.txt")
        mlflow.log_text("v1", "edited.txt")
        folder = _path(mlflow.get_artifact_uri())  # copies both in
        (folder / "edited.txt").write_text("edited in the folder")
        mlflow.log_text("v2", "kept.txt")  # logged after the copy was made
    rid = run.info.run_id
    assert mlflow.artifacts.load_text(f"runs:/{rid}/kept.txt") == "v2"
    assert mlflow.artifacts.load_text(f"runs:/{rid}/edited.txt") == "edited in the folder"


def test_the_folders_uri_works_where_a_uri_is_taken(repo: Path) -> None:
    sklearn = pytest.importorskip("sklearn", reason="scikit-learn is needed for a real model")
    from sklearn.linear_model import LinearRegression

    import gitml.pyfunc
    import gitml.sklearn

    assert sklearn is not None
    model = LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 2.0, 4.0])
    with mlflow.start_run() as run:
        (_path(mlflow.get_artifact_uri()) / "notes.txt").write_text("written, not logged yet")
        assert mlflow.artifacts.load_text(mlflow.get_artifact_uri("notes.txt")) == "written, not logged yet"
        model_uri = mlflow.get_artifact_uri("model")
        gitml.sklearn.save_model(model, _path(model_uri))  # saved into the folder by hand
        loaded = gitml.pyfunc.load_model(model_uri)
        assert loaded.predict([[3.0]])[0] == pytest.approx(6.0)
        mv = mlflow.register_model(model_uri, "linear")  # while the run is still going
        assert mv.source == f"runs:/{run.info.run_id}/model"
        local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri)
        assert (Path(local) / "MLmodel").is_file()
    got = gitml.pyfunc.load_model("models:/linear/1")
    assert got.predict([[1.0]])[0] == pytest.approx(2.0)
    assert gitml.pyfunc.load_model(f"runs:/{run.info.run_id}/model").predict([[2.0]])[0] == pytest.approx(4.0)


def test_a_failed_run_keeps_what_it_wrote(repo: Path) -> None:
    with pytest.raises(RuntimeError):
        with mlflow.start_run() as run:
            (_path(mlflow.get_artifact_uri()) / "partial.log").write_text("epoch 1 ok")
            raise RuntimeError("diverged")
    assert mlflow.get_run(run.info.run_id).info.status == "FAILED"
    assert _listing(run.info.run_id) == ["partial.log"]


def test_a_link_out_of_the_folder_is_refused_but_the_run_ends(repo: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the remote")
    with pytest.raises(InvalidParameterValue):
        with mlflow.start_run() as run:
            folder = _path(mlflow.get_artifact_uri())
            (folder / "ok.txt").write_text("fine")
            os.symlink(secret, folder / "leak.txt")
    assert mlflow.get_run(run.info.run_id).info.status == "FINISHED"
    assert _listing(run.info.run_id) == []
    assert folder.is_dir()  # kept, so the script's files are not lost


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("file:///r/.git/gitml/staging/" + "a" * 32 + "/artifacts", "runs:/" + "a" * 32),
        ("file:///r/.git/gitml/staging/" + "a" * 32 + "/artifacts/", "runs:/" + "a" * 32),
        ("file:///r/.git/gitml/staging/" + "a" * 32 + "/artifacts/m/MLmodel", "runs:/" + "a" * 32 + "/m/MLmodel"),
        ("/r/.git/gitml/staging/" + "b" * 32 + "/artifacts/my%20model", "runs:/" + "b" * 32 + "/my%20model"),
        ("file:///r/.git/gitml/staging/" + "b" * 32 + "/artifacts/my%20model", "runs:/" + "b" * 32 + "/my model"),
        ("file:///r/.git/gitml/staging/" + "A" * 32 + "/artifacts", None),  # run ids are lower-case hex
        ("file:///r/.git/gitml/staging/" + "a" * 31 + "/artifacts", None),
        ("runs:/" + "a" * 32 + "/m", None),
        ("/somewhere/else/model", None),
        (None, None),
    ],
)
def test_staged_uris_map_to_runs_uris(uri: object, expected: str | None) -> None:
    assert staged_runs_uri(uri) == expected


def test_dotdot_cannot_leave_the_folder(repo: Path) -> None:
    with mlflow.start_run():
        with pytest.raises(InvalidParameterValue):
            mlflow.get_artifact_uri("../../escape")
    with pytest.raises(InvalidParameterValue):
        staged = "file:///r/.git/gitml/staging/" + "a" * 32 + "/artifacts/x/../../y"
        mlflow.artifacts.load_text(staged)


def test_a_link_planted_in_the_folder_is_not_written_through(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    with mlflow.start_run() as run:
        mlflow.log_text("x", "dir/a.txt")
        from gitml.artifacts.staging import staging_folder
        from gitml.tracking.tracker import get_tracker

        folder = staging_folder(get_tracker(), run.info.run_id)
        folder.mkdir(parents=True)
        os.symlink(outside, folder / "dir")
        with pytest.raises(InvalidParameterValue):
            mlflow.get_artifact_uri("dir/a.txt")
        os.unlink(folder / "dir")
    assert list(outside.iterdir()) == []
