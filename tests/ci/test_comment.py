"""`gitml ci comment`: one sticky comment, against a real HTTP server speaking both APIs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitml.ci.comment import MARKER, fit_body, upsert_comment
from gitml.ci.http import ApiError
from gitml.ci.platforms import ACTIONS_BOT, open_thread, pr_number_from_event
from gitml.config import resolve_ci_config
from gitml.exceptions import InvalidParameterValue
from tests.ci.fake_api import ACTIONS_TOKEN, FakeApi, serve
from tests.conftest import run_cli


@pytest.fixture
def api() -> Iterator[FakeApi]:
    with serve() as fake:
        yield fake


def gh_thread(api: FakeApi, token: str = ACTIONS_TOKEN, **options: Any) -> Any:
    cfg = resolve_ci_config(
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_API_URL": api.base,
            "GITHUB_REPOSITORY": "acme/shop",
            "GITHUB_TOKEN": token,
        }
    )
    sleeps: list[float] = []
    options.setdefault("sleep", sleeps.append)
    thread = open_thread(cfg, 7, **options)
    thread.sleeps = sleeps
    return thread


def gl_thread(api: FakeApi, token: str = "gl", **options: Any) -> Any:
    cfg = resolve_ci_config(
        {"GITLAB_CI": "true", "CI_API_V4_URL": f"{api.base}/api/v4", "CI_PROJECT_ID": "42",
         "CI_MERGE_REQUEST_IID": "3", "GITLAB_TOKEN": token}
    )  # fmt: skip
    return open_thread(cfg, None, **options)


def ours(api: FakeApi) -> list[int]:
    return [cid for cid, c in api.comments.items() if c["body"].startswith(MARKER)]


def writes(api: FakeApi) -> list[tuple[str, str]]:
    return [c for c in api.log if c[0] in ("POST", "PATCH", "PUT", "DELETE")]


def test_creates_then_updates_in_place(api: FakeApi) -> None:
    first = upsert_comment(gh_thread(api), "accuracy 0.91")
    assert first.action == "created"
    second = upsert_comment(gh_thread(api), "accuracy 0.93")
    assert second.action == "updated" and second.comment_id == first.comment_id
    assert ours(api) == [first.comment_id]
    assert api.comments[first.comment_id]["body"] == f"{MARKER}\naccuracy 0.93"
    assert api.comments[first.comment_id]["login"] == ACTIONS_BOT


def test_reads_every_page_of_150_comments(api: FakeApi) -> None:
    for i in range(140):
        api.add(f"review remark {i}", "bob")
    mine = api.add(f"{MARKER}\nold report", ACTIONS_BOT)
    for i in range(9):
        api.add(f"late remark {i}", "carol")
    result = upsert_comment(gh_thread(api), "new report")
    assert (result.action, result.comment_id) == ("updated", mine)
    lists = [c for c in api.calls("GET") if c[1].endswith("/comments")]
    assert len(lists) == 2  # 150 comments, 100 a page, by the Link header
    assert len(api.comments) == 150 and ours(api) == [mine]


def test_unchanged_body_is_one_list_call_and_no_write(api: FakeApi) -> None:
    upsert_comment(gh_thread(api), "same")
    api.log.clear()
    result = upsert_comment(gh_thread(api), "same")
    assert result.action == "unchanged"
    assert writes(api) == []
    assert [c for c in api.calls("GET") if c[1].endswith("/comments")] == [
        ("GET", "/repos/acme/shop/issues/7/comments")
    ]


def test_eight_concurrent_jobs_leave_one_comment(api: FakeApi) -> None:
    barrier = threading.Barrier(8)
    api.list_gate = threading.Barrier(8)  # every job lists before any creates: the worst race
    errors: list[BaseException] = []

    def job(n: int) -> None:
        try:
            thread = gh_thread(api)
            barrier.wait(timeout=60)
            upsert_comment(thread, f"report of job {n}")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=job, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert len(ours(api)) == 1
    assert len(api.calls("POST")) == 8  # all raced to create, all but one were cleaned up


def test_marker_in_someone_elses_comment_is_left_alone(api: FakeApi) -> None:
    forged = api.add(f"{MARKER}\nI quote the bot", "mallory")
    result = upsert_comment(gh_thread(api, token="pat"), "report")
    assert result.action == "created" and result.comment_id != forged
    assert api.comments[forged]["body"].endswith("I quote the bot")
    assert api.calls("GET").count(("GET", "/user")) == 1  # a PAT can say who it is


def test_too_long_body_is_cut_with_a_note(api: FakeApi) -> None:
    body = "\n".join(f"| metric_{i} | {i} |" for i in range(6000))  # ~100k characters
    result = upsert_comment(gh_thread(api), body)
    stored = api.comments[result.comment_id]["body"]
    assert result.truncated and len(stored) <= 65536
    assert "cut to GitHub's limit of 65,536 characters" in stored
    assert stored.startswith(MARKER)


@pytest.mark.parametrize("limit", [200, 1000, 65536])
def test_fit_body_respects_every_limit(limit: int) -> None:
    text, cut = fit_body("x" * 10 + "\n" + "y" * 100_000, limit, "GitHub")
    assert cut and len(text) <= limit
    assert fit_body("short", limit, "GitHub") == (f"{MARKER}\nshort", False)


def test_gitlab_notes_all_pages_system_notes_skipped(api: FakeApi) -> None:
    for i in range(120):
        api.add(f"note {i}", "bob")
    mine = api.add(f"{MARKER}\nold", "project_1_bot")
    api.comments[api.add(f"{MARKER}\nsystem", "project_1_bot")]["system"] = True
    for i in range(30):
        api.add(f"note {i}", "carol")
    result = upsert_comment(gl_thread(api), "new")
    assert (result.action, result.comment_id) == ("updated", mine)
    assert len([c for c in api.calls("GET") if c[1].endswith("/notes")]) == 2
    assert [c[0] for c in writes(api)] == ["PUT"]
    assert upsert_comment(gl_thread(api), "new").action == "unchanged"


def test_gitlab_cut_to_a_million(api: FakeApi) -> None:
    result = upsert_comment(gl_thread(api), "z" * 1_000_100)
    assert result.truncated and len(api.comments[result.comment_id]["body"]) <= 1_000_000


def test_bad_token_is_one_line_with_status_and_permission(api: FakeApi) -> None:
    with pytest.raises(ApiError) as e:
        upsert_comment(gh_thread(api, token="nope"), "x")
    assert e.value.status == 401 and "pull-requests: write" in e.value.message
    assert "\n" not in e.value.message


def test_read_only_token_is_403_naming_the_permission(api: FakeApi) -> None:
    api.read_only.add(ACTIONS_TOKEN)
    with pytest.raises(ApiError) as e:
        upsert_comment(gh_thread(api), "x")
    assert (
        e.value.status == 403
        and "403" in e.value.message
        and "pull-requests: write" in e.value.message
    )
    api.read_only.add("gl")
    with pytest.raises(ApiError) as e:
        upsert_comment(gl_thread(api), "x")
    assert "Reporter" in e.value.message


def test_rate_limit_waits_the_time_the_api_gives(api: FakeApi) -> None:
    api.inject += [
        (429, {"Retry-After": "2"}, {"message": "slow down"}),
        (
            403,
            {"X-RateLimit-Remaining": "0", "Retry-After": "1"},
            {"message": "API rate limit exceeded"},
        ),
    ]
    thread = gh_thread(api)
    assert upsert_comment(thread, "x").action == "created"
    assert thread.sleeps == [2.0, 1.0]


def test_secondary_rate_limit_without_headers_waits_a_minute(api: FakeApi) -> None:
    api.inject.append((403, {}, {"message": "You have exceeded a secondary rate limit."}))
    thread = gh_thread(api)
    assert upsert_comment(thread, "x").action == "created"
    assert thread.sleeps == [60.0]


def test_rate_limit_longer_than_the_bound_fails_at_once(api: FakeApi) -> None:
    api.inject.append((429, {"Retry-After": "3600"}, {"message": "slow down"}))
    thread = gh_thread(api)
    with pytest.raises(ApiError) as e:
        upsert_comment(thread, "x")
    assert "retry after 3600 s" in e.value.message and thread.sleeps == []


def test_rate_limit_retries_are_bounded(api: FakeApi) -> None:
    api.inject += [(429, {"Retry-After": "0"}, None)] * 10
    thread = gh_thread(api, max_retries=3)
    with pytest.raises(ApiError, match="rate limited"):
        upsert_comment(thread, "x")
    assert len(thread.sleeps) == 3


def test_network_error_fails_the_step_alone() -> None:
    with serve() as fake:
        base = fake.base
    cfg = resolve_ci_config(
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_API_URL": base,
            "GITHUB_REPOSITORY": "a/b",
            "GITHUB_TOKEN": "t",
        }
    )
    with pytest.raises(ApiError, match="cannot reach GitHub"):
        upsert_comment(open_thread(cfg, 1, timeout_s=5), "x")


def test_next_page_link_to_another_host_is_refused(api: FakeApi) -> None:
    api.inject.append((200, {"Link": '<http://evil.example/steal?page=2>; rel="next"'}, []))
    with pytest.raises(ApiError, match="leaves"):
        gh_thread(api).list_comments()


@pytest.mark.parametrize(
    ("env", "match"),
    [
        (
            {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "a/b", "GITHUB_TOKEN": "t"},
            "no pull request number",
        ),
        ({"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "a/b"}, "GITHUB_TOKEN is not set"),
        (
            {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "../x", "GITHUB_TOKEN": "t"},
            "owner/name",
        ),
        (
            {
                "GITLAB_CI": "true",
                "CI_API_V4_URL": "http://h/api/v4",
                "CI_PROJECT_ID": "1",
                "GITLAB_TOKEN": "t",
            },
            "CI_MERGE_REQUEST_IID",
        ),
        (
            {
                "GITLAB_CI": "true",
                "CI_API_V4_URL": "http://h/api/v4",
                "CI_PROJECT_ID": "1",
                "CI_MERGE_REQUEST_IID": "2",
            },
            "job token cannot",
        ),
        ({}, "not in GitHub Actions or GitLab CI"),
    ],
)
def test_missing_environment_is_one_clear_error(env: dict[str, str], match: str) -> None:
    with pytest.raises(InvalidParameterValue, match=match):
        open_thread(resolve_ci_config(env))


@pytest.mark.parametrize(
    ("event", "number"),
    [
        ({"pull_request": {"number": 12}}, 12),
        ({"issue": {"number": 5, "pull_request": {}}}, 5),
        ({"workflow_run": {"pull_requests": [{"number": 9}]}}, 9),
        ({"workflow_run": {"pull_requests": []}}, None),  # a fork's PR: the report carries it
        ({"pull_request": {"number": "12"}}, None),
        ([], None),
    ],
)
def test_pr_number_from_event(tmp_path: Path, event: Any, number: int | None) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    assert pr_number_from_event(str(path)) == number


def test_cli_posts_a_body_file(
    api: FakeApi,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7}}))
    body = tmp_path / "report.md"
    body.write_text("hello <b>team</b>")
    for k, v in {"GITHUB_ACTIONS": "true", "GITHUB_API_URL": api.base, "GITHUB_REPOSITORY": "acme/shop",
                 "GITHUB_TOKEN": ACTIONS_TOKEN, "GITHUB_EVENT_PATH": str(event)}.items():  # fmt: skip
        monkeypatch.setenv(k, v)
    code, out, err = run_cli(capsys, "ci", "comment", "--body-file", str(body))
    assert (code, err) == (0, "")
    assert out.startswith("GitHub comment ") and out.rstrip().endswith("created")
    code, out, _ = run_cli(capsys, "ci", "comment", "--body-file", str(body))
    assert out.rstrip().endswith("unchanged")
    monkeypatch.setenv("GITHUB_TOKEN", "wrong")
    code, out, err = run_cli(capsys, "ci", "comment", "--body-file", str(body))
    assert code == 1 and out == "" and err.count("\n") == 1 and "401" in err


def test_junk_in_the_api_answers_is_skipped(api: FakeApi) -> None:
    junk = [1, "x", None, {"id": "7", "body": "b", "user": {"login": "a"}}, {"id": 8, "body": None, "user": {}},
            {"id": True, "body": "b", "user": {"login": "a"}}]  # fmt: skip
    api.inject.append((200, {}, junk))
    assert gh_thread(api).list_comments() == []
    api.inject.append((200, {}, {"not": "a list"}))
    assert gh_thread(api).list_comments() == []


def test_a_pagination_loop_is_bounded(api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    from gitml.ci import platforms

    monkeypatch.setattr(platforms, "_MAX_PAGES", 3)
    loop = f'<{api.base}/repos/acme/shop/issues/7/comments?page=1>; rel="next"'
    api.inject += [(200, {"Link": loop}, [])] * 5
    with pytest.raises(ApiError, match="more than 3 pages"):
        gh_thread(api).list_comments()
    api.inject.clear()
    api.inject += [(200, {"X-Next-Page": "1"}, [])] * 5
    with pytest.raises(ApiError, match="more than 3 pages"):
        gl_thread(api).list_comments()
    api.inject.clear()
    api.inject.append((200, {"X-Next-Page": "-1; rm -rf /"}, []))
    assert gl_thread(api).list_comments() == []
