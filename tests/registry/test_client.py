"""The MLflow registry API on real repositories, real runs and real tags."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

import gitml
from gitml.client import MlflowClient
from gitml.exceptions import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from gitml.registry.resolve import resolve_models_uri
from tests.conftest import git
from tests.registry.test_state import assert_matches_gto

Runs = Callable[..., str]


def _tag_message(repo: Path, name: str) -> dict:
    return yaml.safe_load(git("tag", "-l", "--format=%(contents)", name, cwd=repo))


def test_register_writes_a_gto_version_tag_at_the_runs_code(
    repo: Path, new_model_run: Runs
) -> None:
    run_id = new_model_run({"accuracy": 0.93})
    mv = gitml.register_model(f"runs:/{run_id}/model", "iris")
    assert (mv.name, mv.version, mv.current_stage, mv.run_id) == ("iris", 1, "None", run_id)
    assert mv.source == f"runs:/{run_id}/model"
    assert mv.git_tag == "iris@v1.0.0" and mv.semver == "v1.0.0"
    assert mv.metrics == {"accuracy": 0.93}
    assert git("cat-file", "-t", "iris@v1.0.0", cwd=repo).strip() == "tag"  # annotated
    code = git("rev-parse", "HEAD", cwd=repo).strip()
    # The tag's commit is the run's code: same tree, the code commit as parent.
    assert git("rev-parse", "iris@v1.0.0^{commit}^", cwd=repo).strip() == code
    assert (
        git("rev-parse", "iris@v1.0.0^{tree}", cwd=repo).strip()
        == git("rev-parse", "HEAD^{tree}", cwd=repo).strip()
    )
    message = _tag_message(repo, "iris@v1.0.0")
    assert message["run_id"] == run_id and message["source_commit"] == code
    assert message["artifact"]["md5"].endswith(".dir") and message["metrics"] == {"accuracy": 0.93}
    assert gitml.register_model(f"runs:/{run_id}/model", "iris").version == 2


def test_stages_archive_and_resolution(repo: Path, new_model_run: Runs) -> None:
    client = MlflowClient()
    runs = [new_model_run({"accuracy": a}) for a in (0.8, 0.9)]
    for r in runs:
        gitml.register_model(f"runs:/{r}/model", "iris")
    client.transition_model_version_stage("iris", 1, "Production")
    assert client.get_model_version("iris", 1).current_stage == "Production"
    assert resolve_models_uri("models:/iris/Production") == f"runs:/{runs[0]}/model"

    mv = client.transition_model_version_stage(
        "iris", "2", "production", archive_existing_versions=True
    )
    assert mv.current_stage == "Production"
    assert client.get_model_version("iris", 1).current_stage == "Archived"
    assert resolve_models_uri("models:/iris/Production") == f"runs:/{runs[1]}/model"
    assert resolve_models_uri("models:/iris/production") == f"runs:/{runs[1]}/model"
    assert resolve_models_uri("models:/iris/1") == f"runs:/{runs[0]}/model"
    assert resolve_models_uri("models:/iris/latest") == f"runs:/{runs[1]}/model"
    latest = client.get_latest_versions("iris", ["Production", "Archived", "Staging"])
    assert [(v.version, v.current_stage) for v in latest] == [(1, "Archived"), (2, "Production")]
    with pytest.raises(ResourceDoesNotExist):
        resolve_models_uri("models:/iris/Staging")

    client.transition_model_version_stage("iris", 2, "Staging")
    assert client.get_model_version("iris", 2).current_stage == "Staging"
    # Production's newest assignment was unassigned: nothing is current there any more.
    assert client.get_latest_versions("iris", ["Production"]) == []
    client.transition_model_version_stage("iris", 2, "None")
    assert client.get_model_version("iris", 2).current_stage == "None"
    assert_matches_gto(repo)


def test_unassigning_the_newest_makes_the_previous_current(repo: Path, new_model_run: Runs) -> None:
    client = MlflowClient()
    for _ in range(2):
        gitml.register_model(f"runs:/{new_model_run()}/model", "iris")
    client.transition_model_version_stage("iris", 1, "Production")
    client.transition_model_version_stage("iris", 2, "Production")  # no archiving: both hold it
    assert client.get_latest_versions("iris", ["Production"])[0].version == 2
    assert client.get_model_version("iris", 1).current_stage == "Production"
    client.transition_model_version_stage("iris", 2, "None")
    assert client.get_latest_versions("iris", ["Production"])[0].version == 1
    assert_matches_gto(repo)


def test_aliases(repo: Path, new_model_run: Runs) -> None:
    client = MlflowClient()
    for _ in range(2):
        gitml.register_model(f"runs:/{new_model_run()}/model", "iris")
    client.set_registered_model_alias("iris", "champion", 1)
    assert client.get_model_version_by_alias("iris", "champion").version == 1
    assert client.get_model_version("iris", 1).aliases == ["champion"]
    client.set_registered_model_alias("iris", "champion", 2)
    assert client.get_model_version_by_alias("iris", "champion").version == 2
    assert client.get_model_version("iris", 1).aliases == []
    assert client.get_registered_model("iris").aliases == {"champion": 2}
    assert resolve_models_uri("models:/iris@champion").startswith("runs:/")
    tags_before = git("tag", cwd=repo)
    client.set_registered_model_alias("iris", "champion", 2)  # already there: no new tag
    assert git("tag", cwd=repo) == tags_before
    assert_matches_gto(repo)
    client.delete_registered_model_alias("iris", "champion")
    with pytest.raises(ResourceDoesNotExist):
        client.get_model_version_by_alias("iris", "champion")
    with pytest.raises(ResourceDoesNotExist):
        client.delete_registered_model_alias("iris", "champion")
    with pytest.raises(InvalidParameterValue):
        client.set_registered_model_alias("iris", "Production", 1)
    assert_matches_gto(repo)


def test_models_search_and_metadata(repo: Path, new_model_run: Runs) -> None:
    client = MlflowClient()
    r1, r2 = new_model_run(), new_model_run()
    client.create_registered_model("empty", tags={"team": "a"}, description="nothing yet")
    gitml.register_model(f"runs:/{r1}/model", "iris")
    gitml.register_model(f"runs:/{r2}/model", "iris-big", tags={"k": "v"}, description="big")
    models = client.search_registered_models()
    assert [m.name for m in models] == ["empty", "iris", "iris-big"]
    assert models[0].tags == {"team": "a"} and models[0].description == "nothing yet"
    assert models[0].latest_versions == []
    assert [v.version for v in models[1].latest_versions] == [1]
    assert [m.name for m in client.search_registered_models("name LIKE 'iris%'")] == [
        "iris",
        "iris-big",
    ]
    assert [m.name for m in client.search_registered_models("name = 'iris'")] == ["iris"]
    page = client.search_registered_models(max_results=2)
    assert len(page) == 2 and page.token is not None
    assert [
        m.name for m in client.search_registered_models(max_results=2, page_token=page.token)
    ] == ["iris-big"]

    found = client.search_model_versions(f"run_id = '{r2}'")
    assert [(v.name, v.version) for v in found] == [("iris-big", 1)]
    assert found[0].tags == {"k": "v"} and found[0].description == "big"
    assert [v.name for v in client.search_model_versions("name = 'iris'")] == ["iris"]
    with pytest.raises(InvalidParameterValue):
        client.search_model_versions("nonsense here")

    client.update_registered_model("iris", description="the iris model")
    client.set_registered_model_tag("iris", "owner", "me")
    client.update_model_version("iris", 1, description="first")
    client.set_model_version_tag("iris", 1, "validated", "yes")
    model = client.get_registered_model("iris")
    assert model.description == "the iris model" and model.tags == {"owner": "me"}
    mv = client.get_model_version("iris", 1)
    assert mv.description == "first" and mv.tags == {"validated": "yes"}
    client.delete_model_version_tag("iris", 1, "validated")
    assert client.get_model_version("iris", 1).tags == {}
    # Mutable metadata lives on the metadata branch, not in tags.
    files = git("ls-tree", "-r", "--name-only", "gitml", "registry/", cwd=repo).split()
    assert (
        "registry/models/iris/model.json" in files and "registry/models/iris/versions.json" in files
    )


def test_rename(repo: Path, new_model_run: Runs) -> None:
    client = MlflowClient()
    for _ in range(3):
        gitml.register_model(f"runs:/{new_model_run()}/model", "iris")
    client.delete_model_version("iris", 2)
    client.transition_model_version_stage("iris", 1, "Production")
    client.set_registered_model_alias("iris", "champion", 3)
    client.update_registered_model("iris", description="d")
    renamed = client.rename_registered_model("iris", "flowers/iris")
    assert (
        renamed.name == "flowers/iris"
        and renamed.description == "d"
        and renamed.aliases == {"champion": 3}
    )
    assert [v.version for v in client.search_model_versions("name = 'flowers/iris'")] == [3, 1]
    assert client.get_model_version("flowers/iris", 1).current_stage == "Production"
    with pytest.raises(ResourceDoesNotExist):
        client.get_model_version("flowers/iris", 2)
    with pytest.raises(ResourceDoesNotExist):
        client.get_registered_model("iris")
    assert "iris@deprecated" in " ".join(git("tag", cwd=repo).split())
    assert_matches_gto(repo)
    with pytest.raises(ResourceAlreadyExists):
        client.rename_registered_model("flowers/iris", "flowers/iris")


def test_delete_and_recreate(repo: Path, new_model_run: Runs) -> None:
    client = MlflowClient()
    run_id = new_model_run()
    gitml.register_model(f"runs:/{run_id}/model", "iris")
    gitml.register_model(f"runs:/{run_id}/model", "iris")
    client.delete_model_version("iris", 2)
    with pytest.raises(ResourceDoesNotExist):
        client.get_model_version("iris", 2)
    assert (
        gitml.register_model(f"runs:/{run_id}/model", "iris").version == 3
    )  # numbers are never reused
    client.delete_registered_model("iris")
    with pytest.raises(ResourceDoesNotExist):
        client.get_registered_model("iris")
    assert client.search_registered_models() == []
    assert_matches_gto(repo)
    client.create_registered_model("iris")
    assert client.get_registered_model("iris").latest_versions == []
    assert client.search_model_versions("name = 'iris'") == []
    assert gitml.register_model(f"runs:/{run_id}/model", "iris").version == 4


def test_history_from_tags(repo: Path, new_model_run: Runs) -> None:
    client = MlflowClient()
    gitml.register_model(f"runs:/{new_model_run()}/model", "iris")
    client.transition_model_version_stage("iris", 1, "Staging")
    client.transition_model_version_stage("iris", 1, "Production")
    events = client.get_registry_history("iris")
    assert [(e.event, e.version, e.stage) for e in events] == [
        ("registration", 1, None),
        ("assignment", 1, "staging"),
        ("unassignment", 1, "staging"),
        ("assignment", 1, "production"),
    ]
    assert all(e.author == "Test User" and e.author_email == "test@example.com" for e in events)
    assert [e.timestamp for e in events] == sorted(
        {e.timestamp for e in events}
    )  # strictly increasing


@pytest.mark.parametrize("name", ["a@b", "a#b", "has space", "a..b", "-x", ""])
def test_bad_names(repo: Path, name: str) -> None:
    with pytest.raises(InvalidParameterValue):
        MlflowClient().create_registered_model(name)


def test_bad_input(repo: Path, new_model_run: Runs) -> None:
    client = MlflowClient()
    run_id = new_model_run()
    with pytest.raises(ResourceDoesNotExist):
        client.create_model_version("nope", f"runs:/{run_id}/model")
    gitml.register_model(f"runs:/{run_id}/model", "iris")
    with pytest.raises(ResourceAlreadyExists):
        client.create_registered_model("iris")
    with pytest.raises(ResourceDoesNotExist):
        client.get_model_version("iris", 7)
    with pytest.raises(InvalidParameterValue):
        client.get_model_version("iris", "one")
    with pytest.raises(InvalidParameterValue):
        client.transition_model_version_stage("iris", 1, "Prod")
    with pytest.raises(InvalidParameterValue):
        client.transition_model_version_stage("iris", 1, "Archived", archive_existing_versions=True)
    with pytest.raises(InvalidParameterValue, match="no model"):
        gitml.register_model(f"runs:/{run_id}/elsewhere", "iris")
    with pytest.raises(InvalidParameterValue):
        resolve_models_uri("models:/iris")
    with pytest.raises(InvalidParameterValue):
        resolve_models_uri("models:/iris/None")
    with pytest.raises(ResourceDoesNotExist):
        resolve_models_uri("models:/ghost/1")
    # A hand-made tag that does not parse is skipped, not fatal.
    git("tag", "-a", "iris@v-broken", "-m", "oops", cwd=repo)
    assert client.get_registered_model("iris").latest_versions[0].version == 1


def test_models_uri_downloads_through_the_model_layer(
    repo: Path, new_model_run: Runs, tmp_path: Path
) -> None:
    from gitml.models.uri import resolve_model_uri

    gitml.register_model(f"runs:/{new_model_run()}/model", "iris")
    MlflowClient().set_registered_model_alias("iris", "champion", 1)
    local = resolve_model_uri("models:/iris@champion", tmp_path / "download")
    assert (local / "MLmodel").read_text() == "flavors: {}\n"
    assert (local / "weights.bin").read_bytes() == b"\x00\x01"


def test_signature_and_file_sources(repo: Path, new_model_run: Runs) -> None:
    sig = {"inputs": '[{"type": "double", "name": "x"}]', "outputs": '[{"type": "long"}]'}
    run_id = new_model_run(mlmodel=yaml.safe_dump({"flavors": {}, "signature": sig}))
    mv = gitml.register_model(f"runs:/{run_id}/model", "iris")
    assert mv.signature == sig
    assert _tag_message(repo, "iris@v1.0.0")["signature"] == sig
    from gitml.fluent.artifacts import log_text

    log_text("hello", "notes/readme.txt", run_id=run_id)
    with pytest.raises(InvalidParameterValue, match="a file, not a model folder"):
        gitml.register_model(f"runs:/{run_id}/notes/readme.txt", "iris")


def test_registry_can_write_the_branch_first(repo: Path) -> None:
    MlflowClient().create_registered_model("first", description="before any run")
    files = git("ls-tree", "-r", "--name-only", "gitml", cwd=repo).split()
    assert files == ["gitml.yaml", "registry/models/first/model.json"]
    with gitml.start_run():  # the tracker accepts the branch the registry started
        gitml.log_metric("m", 1.0)
    assert MlflowClient().get_registered_model("first").description == "before any run"


def test_copy_model_version(repo: Path, new_model_run: Runs) -> None:
    client = MlflowClient()
    run_id = new_model_run()
    gitml.register_model(f"runs:/{run_id}/model", "dev/iris")
    client.transition_model_version_stage("dev/iris", 1, "Staging")
    mv = client.copy_model_version("models:/dev/iris/Staging", "prod/iris")
    assert (mv.name, mv.version, mv.source, mv.run_id) == (
        "prod/iris",
        1,
        f"runs:/{run_id}/model",
        run_id,
    )


def test_models_uri_follows_the_tracking_uri(
    repo: Path, new_model_run: Runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = new_model_run()
    gitml.register_model(f"runs:/{run_id}/model", "iris")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # not a repository
    gitml.set_tracking_uri(str(repo))
    try:
        assert resolve_models_uri("models:/iris/1") == f"runs:/{run_id}/model"
    finally:
        gitml.set_tracking_uri(None)
