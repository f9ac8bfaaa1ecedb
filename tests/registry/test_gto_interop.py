"""GTO and gitml read and write one registry: tags made by the real `gto` read in gitml, and back."""

from __future__ import annotations

import subprocess
from pathlib import Path

from gitml.registry.client import RegistryClient
from gitml.registry.resolve import current_version
from gitml.registry.tags import parse_tag
from tests.registry._util import GTO, commit, gto, gto_cli


def _gto(repo: Path, *args: str) -> None:
    proc = subprocess.run([GTO, *args], cwd=repo, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_gto_made_registry_reads_and_extends(repo: Path) -> None:
    _gto(repo, "register", "churn", "HEAD")  # v0.0.1
    commit(repo, "second")
    _gto(repo, "register", "churn", "HEAD", "--bump-minor")  # v0.1.0
    _gto(repo, "assign", "churn", "--version", "v0.0.1", "--stage", "prod")
    client = RegistryClient()
    versions = client.search_model_versions("name = 'churn'", order_by=["version ASC"])
    assert [(v.version, v.semver) for v in versions] == [(1, "v0.0.1"), (2, "v0.1.0")]
    # A GTO stage that is not one of MLflow's reads as an alias.
    assert client.get_model_version_by_alias("churn", "prod").version == 1
    assert current_version("churn", stage="prod").version == 1

    client.transition_model_version_stage("churn", 2, "Production")
    client.set_registered_model_alias("churn", "prod", 2)
    mv = client.create_model_version("churn", "s3://bucket/churn-model")  # any source string
    assert (mv.version, mv.semver) == (3, "v3.0.0")
    shown = {
        v["version"]: sorted(s["stage"] for s in v["stages"]) for v in gto(repo, "show", "churn")
    }
    assert shown == {"v3.0.0": [], "v0.1.0": ["prod", "production"], "v0.0.1": []}
    assert gto_cli(repo, "show")["churn"]["version"] == "v3.0.0"  # the command line agrees


def test_our_tags_parse_with_gtos_own_parser(repo: Path) -> None:
    from gto.tag import parse_name

    names = [
        "iris@v1.0.0", "iris@v2.0.0!#3", "iris#production#4", "iris#production!#5",
        "iris#champion#6", "iris@deprecated#7", "team/fraud@v10.0.0",
    ]  # fmt: skip
    for name in names:
        ours, theirs = parse_tag(name), parse_name(name)
        assert ours is not None
        assert theirs["name"] == ours.model and theirs["action"].value == ours.action.value
        assert theirs.get("version") == ours.version and theirs.get("stage") == ours.stage
        assert theirs.get("counter") == ours.counter
