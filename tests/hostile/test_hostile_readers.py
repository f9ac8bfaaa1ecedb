"""Hostile branch files: what an attacker with push access writes on the metadata branch is read
bounded (size, depth, 64-bit numbers, no YAML aliases); a bad run or experiment is skipped with
one warning naming it, and everything else stays listable and searchable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from gitml.exceptions import CorruptMetadata, InvalidParameterValue
from gitml.tracking.client import GitMLClient
from tests.conftest import git
from tests.hostile._readers import plant, push_branch
from tests.hostile.conftest import World

ROOT = Path(__file__).resolve().parents[2]
DEEP = 100_000


def gitml_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real command line, in a subprocess (bounded in time)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", "from gitml.cli import main; main()", *args],
        cwd=cwd, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def _meta(world: World, run_id: str) -> dict:
    return json.loads(git("show", f"refs/heads/gitml:runs/{run_id[:2]}/{run_id}/meta.json", cwd=world.attacker))


def _bad_run(template: dict, **changes: object) -> tuple[str, dict[str, bytes]]:
    run_id = uuid.uuid4().hex
    meta = {**template, "run_id": run_id, **changes}
    return run_id, {f"runs/{run_id[:2]}/{run_id}/meta.json": json.dumps(meta).encode()}


@pytest.fixture
def hostile(world: World) -> tuple[World, list[str], dict[str, str]]:
    """Three good runs, then an attacker's bad runs and junk folders, pushed; the victim pulls.
    Returns (world, good run ids, {bad run id: attack})."""
    good = [world.log_run(world.attacker, acc=0.5 + i / 10) for i in range(3)]
    world.push(world.attacker)
    template = _meta(world, good[0])
    bad: dict[str, str] = {}
    files: dict[str, bytes] = {}

    def add(attack: str, extra: dict[str, bytes] | None = None, **changes: object) -> None:
        run_id, f = _bad_run(template, **changes)
        bad[run_id] = attack
        files.update(f)
        for name, data in (extra or {}).items():
            files[f"runs/{run_id[:2]}/{run_id}/{name}"] = data

    add("start_time 10^30", start_time=10**30)  # schema-valid: an integer
    add("end_time -10^25", end_time=-(10**25))
    add("params nested 100,000 deep", {"params.json": b"[" * DEEP + b"]" * DEEP})
    # a metric value past float range is no error: it reads as infinity, and the run stays listed
    huge, f = _bad_run(template)
    files.update(f)
    files[f"runs/{huge[:2]}/{huge}/metrics.json"] = json.dumps({"acc": {"value": 10**400, "timestamp": 1, "step": 0}}).encode()
    good.append(huge)
    add("metric step 2^70", {"metrics.json": json.dumps({"acc": {"value": 1.0, "timestamp": 1, "step": 2**70}}).encode()})
    add("tags with a 5,000-digit number", {"tags.json": b'{"a": ' + b"9" * 5000 + b"}"})
    # folders under runs/ that are no run id, one of them `..`
    sha = good[0]
    files[f"runs/{sha[:2]}/../meta.json"] = json.dumps(template).encode()
    files[f"runs/{sha[:2]}/not-a-run/meta.json"] = json.dumps(template).encode()
    other = uuid.uuid4().hex
    prefix = "00" if other[:2] != "00" else "ff"
    files[f"runs/{prefix}/{other}/meta.json"] = json.dumps({**template, "run_id": other}).encode()
    plant(world.attacker, files)
    push_branch(world.attacker)
    world.pull(world.victim)
    return world, good, bad


def test_one_bad_run_does_not_break_listing_or_search(
    hostile: tuple[World, list[str], dict[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    world, good, bad = hostile
    client = GitMLClient(world.victim)
    with caplog.at_level("WARNING", logger="gitml"):
        found = client.search_runs(None, "", max_results=100)
        assert sorted(r.info.run_id for r in found) == sorted(good)
        hits = client.search_runs(None, "metrics.acc > 0.55", max_results=100)
        assert sorted(r.info.run_id for r in hits) == sorted(good[1:])  # the last is +inf
        assert client.get_run(good[-1]).data.metrics["acc"] == float("inf")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings  # ONE aggregated warning
    assert "run(s) skipped" in warnings[0] and "the rest stay readable" in warnings[0]
    assert str(len(bad) + 3) in warnings[0]  # the bad runs and the three junk folders
    for run_id in bad:  # each bad run, asked for by id, is one clear error
        with pytest.raises(CorruptMetadata):
            client.get_run(run_id)
    for run_id in good:
        assert client.get_run(run_id).info.run_id == run_id
    # nothing was deleted from the victim's branch: the bad files are skipped, not removed
    assert set(good) | set(bad) <= world.runs_on(world.victim)


def test_runs_list_cli_lists_the_rest_with_one_warning(hostile: tuple[World, list[str], dict[str, str]]) -> None:
    world, good, bad = hostile
    out = gitml_cli("runs", "list", cwd=world.victim)
    assert out.returncode == 0, out.stderr
    listed = [line.split()[0] for line in out.stdout.splitlines()[2:]]
    assert sorted(listed) == sorted(g[:12] for g in good)  # the +inf metric prints as inf
    assert out.stderr.count("\n") == 1 and "skipped as unreadable" in out.stderr
    assert any(run_id in out.stderr for run_id in bad)
    out = gitml_cli("runs", "search", "metrics.acc >= 0.5", "--json", cwd=world.victim)
    assert out.returncode == 0, out.stderr
    assert sorted(r["info"]["run_id"] for r in json.loads(out.stdout)) == sorted(good)


def test_unreadable_experiments_are_named_not_dropped_silently(world: World, caplog: pytest.LogCaptureFixture) -> None:
    world.log_run(world.attacker, acc=1.0)
    world.push(world.attacker)
    bomb = b'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + b"".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n".encode()
        for i in range(9)
    )  # a billion laughs: 9^10 strings if expanded
    plant(
        world.attacker,
        {
            "experiments/123/meta.yaml": bomb,
            "experiments/456/meta.yaml": b"experiment_id: '456'\nname: ok-but-deep\nlifecycle_stage: active\ncreation_time: "
            + b"1" * 40 + b"\n",
            "experiments/evil name/meta.yaml": b"experiment_id: '7'\nname: seven\nlifecycle_stage: active\n",
            "experiments/789/meta.yaml": b"experiment_id: '1'\nname: impostor\nlifecycle_stage: active\n",
        },
    )
    push_branch(world.attacker)
    world.pull(world.victim)
    client = GitMLClient(world.victim)
    start = time.monotonic()
    with caplog.at_level("WARNING", logger="gitml"):
        names = [e.name for e in client.search_experiments()]
    assert time.monotonic() - start < 10  # the bomb was never expanded
    assert names == ["Default"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings
    for name in ("experiments/123", "experiments/456", "experiments/evil name", "experiments/789"):
        assert name in warnings[0]
    assert "aliases" in warnings[0]
    out = gitml_cli("experiments", "list", cwd=world.victim)
    assert out.returncode == 0 and "Default" in out.stdout
    assert "experiments/123" in out.stderr and out.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "name",
    ["line one\nline two", "tab\there", "esc \x1b[31mred", "nul\0", "bidi \u202egnp.exe", "sep\u2028x", "del\x7f"],
)
def test_experiment_names_with_control_characters_are_refused(world: World, name: str) -> None:
    client = GitMLClient(world.victim)
    with pytest.raises(InvalidParameterValue, match="control characters|NUL"):
        client.create_experiment(name)
    if "\0" not in name:  # a NUL cannot reach a command line at all
        out = gitml_cli("experiments", "create", name, cwd=world.victim)
        assert out.returncode != 0 and out.stderr.startswith("Error:") and out.stderr.count("\n") == 1


def test_times_and_steps_out_of_range_are_refused_on_write(world: World) -> None:
    client = GitMLClient(world.victim)
    exp = client.create_experiment("ranges")
    with pytest.raises(InvalidParameterValue, match="64-bit"):
        client.create_run(exp, start_time=10**30)
    run = client.create_run(exp)
    with pytest.raises(InvalidParameterValue, match="64-bit"):
        client.log_metric(run.info.run_id, "m", 1.0, step=2**63)
    with pytest.raises(InvalidParameterValue, match="64-bit"):
        client.log_metric(run.info.run_id, "m", 1.0, timestamp=10**20)
    with pytest.raises(InvalidParameterValue, match="64-bit"):
        client.set_terminated(run.info.run_id, end_time=-(10**19))
    client.log_metric(run.info.run_id, "m", 1.0, step=2**63 - 1)
    client.set_terminated(run.info.run_id)
    assert client.get_run(run.info.run_id).data.metrics == {"m": 1.0}


def test_extreme_but_valid_times_still_print(world: World) -> None:
    """Own attack: a start time that fits 64 bits but no calendar must not crash `runs list`."""
    good = world.log_run(world.attacker, acc=1.0)
    world.push(world.attacker)
    run_id, files = _bad_run(_meta(world, good), start_time=2**63 - 1, end_time=-(2**63))
    plant(world.attacker, files)
    push_branch(world.attacker)
    world.pull(world.victim)
    out = gitml_cli("runs", "list", cwd=world.victim)
    assert out.returncode == 0, out.stderr
    assert run_id[:12] in out.stdout and good[:12] in out.stdout


def test_history_chunk_with_huge_numbers_is_one_clear_error(world: World) -> None:
    """Own attack: a metric history chunk with a step past 64 bits and a 10^400 value."""
    good = world.log_run(world.attacker, acc=1.0)
    world.push(world.attacker)
    base = f"runs/{good[:2]}/{good}/history"
    plant(world.attacker, {f"{base}/zz-evil.jsonl": b'["acc", 1.0, 1, ' + b"9" * 30 + b"]\n"})
    push_branch(world.attacker)
    world.pull(world.victim)
    client = GitMLClient(world.victim)
    with pytest.raises(CorruptMetadata, match="64-bit|not a metric point"):
        client.get_metric_history(good, "acc")
    assert client.get_run(good).data.metrics["acc"] == 1.0  # the run itself still reads


# -- the filter grammar and paging -------------------------------------------------------------


@pytest.mark.parametrize(
    "filter_string",
    [
        "metrics.acc > " + "1" * 20_000 + "x",
        "metrics.acc > " + "1" * 20_000,
        "(" * 3000 + "metrics.acc > 0" + ")" * 3000,
        "metrics.acc > 0" + " OR metrics.acc > 0" * 3000,
        "params.p = '" + "x" * 200_000,
        "x" * 2_000_000,
    ],
    ids=["20k-digits-then-junk", "20k-digits", "3000-parens", "3000-ORs", "unclosed-200k", "2M-chars"],
)
def test_hostile_filters_answer_fast(world: World, filter_string: str) -> None:
    world.log_run(world.victim, acc=0.9)
    client = GitMLClient(world.victim)
    start = time.monotonic()
    try:
        client.search_runs(None, filter_string)
    except InvalidParameterValue as e:
        assert len(str(e)) < 600  # the error does not echo the whole filter back
    assert time.monotonic() - start < 5


@pytest.mark.parametrize(
    "filter_string",
    ["a" * 30 + " ~", "name = " + "1" * 20_000 + "x", "name = '1.2.3e'", "name = 1.2.3"],
)
def test_hostile_experiment_filters_answer_fast(world: World, filter_string: str) -> None:
    client = GitMLClient(world.victim)
    start = time.monotonic()
    with pytest.raises(InvalidParameterValue) if "'" not in filter_string else _nothing():
        client.search_experiments(filter_string=filter_string)
    assert time.monotonic() - start < 2


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: object) -> None:
        return None


@pytest.mark.parametrize(
    "token",
    [
        "eyJvZmZzZXQiOiAxZTk5OTl9",  # {"offset": 1e9999}
        __import__("base64").urlsafe_b64encode(json.dumps({"offset": 10**30}).encode()).decode(),
        __import__("base64").urlsafe_b64encode(b'{"offset": ' + b"9" * 5000 + b"}").decode(),
        __import__("base64").urlsafe_b64encode(b"[" * 50_000 + b"]" * 50_000).decode(),
        "A" * 1_000_000,
        "not base64 !!",
    ],
    ids=["inf", "1e30", "5000-digits", "deep", "1MB", "junk"],
)
def test_hostile_page_tokens(world: World, token: str) -> None:
    world.log_run(world.victim, acc=0.9)
    client = GitMLClient(world.victim)
    with pytest.raises(InvalidParameterValue, match="page_token"):
        client.search_runs(None, "", page_token=token)
    with pytest.raises(InvalidParameterValue, match="page_token"):
        client.search_experiments(page_token=token)


def test_deeply_nested_signature_is_a_clear_error(tmp_path: Path) -> None:
    from gitml.models.signature import Schema

    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(InvalidParameterValue, match="signature"):
        Schema.from_json(deep)
    nested = '[{"type": ' + '{"type": "array", "items": ' * 5000 + '"double"' + "}" * 5000 + "}]"
    with pytest.raises(InvalidParameterValue):
        Schema.from_json(nested)


# -- reading one's own writes while the background flush commits -------------------------------


def test_reads_see_writes_a_flush_has_taken_but_not_committed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow's own tests found it: with a short flush interval, a run created a moment ago was
    sometimes "not found" while the background flush was committing it (12 of 300 cycles)."""
    from gitml.fluent.tracking import reset
    from gitml.tracking import tracker as _tracker

    monkeypatch.setenv("GITML_FLUSH_INTERVAL", "0.001")
    reset()
    _tracker.reset_all()
    client = GitMLClient(world.victim)
    exp = client.create_experiment("race")
    failures = []
    for i in range(300):
        try:
            run = client.create_run(exp)  # reads the run back
            client.log_metric(run.info.run_id, "m", float(i), step=i)
            client.set_terminated(run.info.run_id)
            assert client.get_run(run.info.run_id).data.metrics["m"] == float(i)
        except Exception as e:  # noqa: BLE001 - counted, then asserted
            failures.append(repr(e))
    _tracker.reset_all()
    assert failures == []
    found = GitMLClient(world.victim).search_runs([exp], "", max_results=1000)
    assert len(found) == 300 and {r.info.status for r in found} == {"FINISHED"}


def test_recover_reports_only_what_it_committed(world: World) -> None:
    """A stale journal whose every record is already on the branch: nothing is "Recovered"."""
    import shutil

    from gitml.tracking import tracker as _tracker

    client = GitMLClient(world.victim)
    run = client.create_run(client.create_experiment("stale"))
    client.log_metric(run.info.run_id, "m", 1.0)
    client.flush()
    journal_dir = world.victim / ".git" / "gitml" / "journal"
    (journal,) = journal_dir.glob(f"{run.info.run_id}-*.jsonl")
    shutil.copy(journal, world.home / journal.name)
    client.set_terminated(run.info.run_id)
    _tracker.reset_all()
    assert not journal.exists()
    shutil.copy(world.home / journal.name, journal)  # as if the process died before removing it
    before = git("rev-parse", "refs/heads/gitml", cwd=world.victim)
    out = gitml_cli("runs", "recover", cwd=world.victim)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "Nothing to recover\n"
    assert git("rev-parse", "refs/heads/gitml", cwd=world.victim) == before
    assert GitMLClient(world.victim).get_run(run.info.run_id).info.status == "FINISHED"


def test_load_dict_refuses_a_yaml_alias_bomb(world: World) -> None:
    """Own attack: a YAML artifact that expands to billions of strings when loaded."""
    import gitml
    from tests.hostile.conftest import in_clone

    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(9)
    )
    with in_clone(world.victim):
        with gitml.start_run() as run:
            gitml.log_text(bomb, "cfg.yaml")
            gitml.log_dict({"deep": [[[[1]]]], "big": 10**30}, "ok.json")
        start = time.monotonic()
        with pytest.raises(InvalidParameterValue, match="aliases"):
            gitml.artifacts.load_dict(f"runs:/{run.info.run_id}/cfg.yaml")
        assert time.monotonic() - start < 5
        assert gitml.artifacts.load_dict(f"runs:/{run.info.run_id}/ok.json") == {"deep": [[[[1]]]], "big": 10**30}
