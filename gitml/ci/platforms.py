"""The comment threads of a GitHub pull request and a GitLab merge request.

GitHub: `GET/POST /repos/{owner}/{repo}/issues/{number}/comments`, `PATCH/DELETE
/repos/{owner}/{repo}/issues/comments/{id}`, pages by `Link: <...>; rel="next"`.
GitLab: `GET/POST /projects/{id}/merge_requests/{iid}/notes`, `PUT/DELETE .../notes/{id}`,
pages by the `X-Next-Page` header. Both list 100 a page and every page is read.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gitml.ci.http import ApiClient, ApiError
from gitml.config import CIConfig
from gitml.exceptions import InvalidParameterValue

__all__ = [
    "ACTIONS_BOT",
    "Comment",
    "GitHubThread",
    "GitLabThread",
    "Thread",
    "open_thread",
    "pr_number_from_event",
]

ACTIONS_BOT = "github-actions[bot]"  # who an Actions GITHUB_TOKEN comments as
_MAX_PAGES = 200  # 20,000 comments: past that a thread is not a pull request's
_LINK_NEXT = re.compile(r'<([^<>]+)>\s*;\s*rel="?next"?')
_REPO = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?/(?!\.\.?$)[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Comment:
    """One comment: its id, body and author's login."""

    id: int
    body: str
    author: str


class Thread(Protocol):
    """A pull or merge request's comments, as the sticky-comment logic needs them."""

    name: str
    limit: int  # longest body the platform accepts, in characters
    api: ApiClient

    def list_comments(self) -> list[Comment]: ...
    def create(self, body: str) -> Comment: ...
    def update(self, comment_id: int, body: str) -> None: ...
    def delete(self, comment_id: int) -> None: ...
    def me(self) -> str: ...


def _comment(item: Any, author_key: str, login_key: str) -> Comment | None:
    if not isinstance(item, dict):
        return None
    cid, body, author = item.get("id"), item.get("body"), item.get(author_key)
    login = author.get(login_key) if isinstance(author, dict) else None
    if type(cid) is not int or not isinstance(body, str) or not isinstance(login, str):
        return None
    return Comment(cid, body, login)


class GitHubThread:
    """The issue-comment thread of a GitHub pull request."""

    name = "GitHub"
    limit = 65536

    def __init__(
        self, api: ApiClient, repository: str, number: int, user: str | None = None
    ) -> None:
        self.api = api
        self.repository = repository
        self.number = number
        self._me = user

    def list_comments(self) -> list[Comment]:
        """Every comment of the pull request, all pages."""
        out: list[Comment] = []
        url: str | None = self.api.url(
            f"repos/{self.repository}/issues/{self.number}/comments", {"per_page": 100}
        )
        for _ in range(_MAX_PAGES):
            if url is None:
                return out
            got = self.api.request("GET", url)
            items = got.body if isinstance(got.body, list) else []
            out += [c for c in (_comment(i, "user", "login") for i in items) if c is not None]
            match = _LINK_NEXT.search(got.header("link") or "")
            url = match.group(1) if match else None
            if url is not None and not self.api.same_origin(url):
                raise ApiError(f"GitHub's next-page link leaves {self.api.base_url}: {url}", 0)
        raise ApiError(f"more than {_MAX_PAGES} pages of comments: refusing to read on", 0)

    def create(self, body: str) -> Comment:
        """Post a new comment; return it."""
        got = self.api.request(
            "POST",
            self.api.url(f"repos/{self.repository}/issues/{self.number}/comments"),
            {"body": body},
        )
        found = _comment(got.body, "user", "login")
        if found is None:
            raise ApiError("GitHub's answer to creating a comment has no id", got.status)
        return found

    def update(self, comment_id: int, body: str) -> None:
        """Replace a comment's body."""
        self.api.request(
            "PATCH",
            self.api.url(f"repos/{self.repository}/issues/comments/{comment_id}"),
            {"body": body},
        )

    def delete(self, comment_id: int) -> None:
        """Delete a comment (one already gone is fine)."""
        try:
            self.api.request(
                "DELETE", self.api.url(f"repos/{self.repository}/issues/comments/{comment_id}")
            )
        except ApiError as e:
            if e.status != 404:
                raise

    def me(self) -> str:
        """The token's login; an Actions GITHUB_TOKEN cannot read /user and comments as the bot."""
        if self._me is None:
            try:
                got = self.api.request("GET", self.api.url("user"))
                login = got.body.get("login") if isinstance(got.body, dict) else None
                self._me = login if isinstance(login, str) else ACTIONS_BOT
            except ApiError as e:
                if e.status != 403:
                    raise
                self._me = ACTIONS_BOT  # "Resource not accessible by integration"
        return self._me


class GitLabThread:
    """The notes of a GitLab merge request."""

    name = "GitLab"
    limit = 1_000_000

    def __init__(self, api: ApiClient, project: str, iid: int, user: str | None = None) -> None:
        self.api = api
        self.project = urllib.parse.quote(project, safe="")
        self.iid = iid
        self._me = user

    def _notes(self) -> str:
        return f"projects/{self.project}/merge_requests/{self.iid}/notes"

    def list_comments(self) -> list[Comment]:
        """Every note of the merge request (system notes left out), all pages."""
        out: list[Comment] = []
        page: str | None = "1"
        for _ in range(_MAX_PAGES):
            if not page:
                return out
            query: dict[str, str | int] = {
                "per_page": 100,
                "page": page,
                "sort": "asc",
                "order_by": "created_at",
            }
            got = self.api.request("GET", self.api.url(self._notes(), query))
            items = got.body if isinstance(got.body, list) else []
            for item in items:
                if isinstance(item, dict) and item.get("system") is True:
                    continue
                found = _comment(item, "author", "username")
                if found is not None:
                    out.append(found)
            nxt = (got.header("x-next-page") or "").strip()
            page = nxt if nxt.isdigit() else None
        raise ApiError(f"more than {_MAX_PAGES} pages of notes: refusing to read on", 0)

    def create(self, body: str) -> Comment:
        """Post a new note; return it."""
        got = self.api.request("POST", self.api.url(self._notes()), {"body": body})
        found = _comment(got.body, "author", "username")
        if found is None:
            raise ApiError("GitLab's answer to creating a note has no id", got.status)
        return found

    def update(self, comment_id: int, body: str) -> None:
        """Replace a note's body."""
        self.api.request("PUT", self.api.url(f"{self._notes()}/{comment_id}"), {"body": body})

    def delete(self, comment_id: int) -> None:
        """Delete a note (one already gone is fine)."""
        try:
            self.api.request("DELETE", self.api.url(f"{self._notes()}/{comment_id}"))
        except ApiError as e:
            if e.status != 404:
                raise

    def me(self) -> str:
        """The token's username (a project access token has its own bot user)."""
        if self._me is None:
            got = self.api.request("GET", self.api.url("user"))
            name = got.body.get("username") if isinstance(got.body, dict) else None
            if not isinstance(name, str):
                raise ApiError("GitLab's /user answer names no username", got.status)
            self._me = name
        return self._me


def pr_number_from_event(path: str | None) -> int | None:
    """The pull request number in the Actions event payload (`GITHUB_EVENT_PATH`), if any."""
    if not path:
        return None
    try:
        with open(Path(path), "rb") as f:
            event = json.loads(f.read(64 * 1024 * 1024))
    except (OSError, ValueError):
        return None
    if not isinstance(event, dict):
        return None
    for key in ("pull_request", "issue"):
        item = event.get(key)
        if isinstance(item, dict) and type(item.get("number")) is int:
            return int(item["number"])
    run = event.get("workflow_run")
    prs = run.get("pull_requests") if isinstance(run, dict) else None
    if (
        isinstance(prs, list)
        and prs
        and isinstance(prs[0], dict)
        and type(prs[0].get("number")) is int
    ):
        return int(prs[0]["number"])
    return None


def _positive(value: object, what: str) -> int:
    text = str(value).strip()
    if not text.isdigit() or int(text) <= 0:
        raise InvalidParameterValue(f"{what} must be a positive number, not {value!r}")
    return int(text)


def open_thread(cfg: CIConfig, number: int | None = None, **api_options: Any) -> Thread:
    """The comment thread of the current PR/MR, from the CI's config (`number` overrides)."""
    if cfg.platform == "gitlab":
        if not (cfg.gitlab_api_url and cfg.gitlab_project_id):
            raise InvalidParameterValue(
                "CI_API_V4_URL and CI_PROJECT_ID are not set: not a GitLab CI job?"
            )
        iid = number if number is not None else cfg.gitlab_mr_iid
        if iid is None:
            raise InvalidParameterValue(
                "no merge request here (CI_MERGE_REQUEST_IID is unset: run in a merge-request "
                "pipeline, or pass --pr N)"
            )
        if not cfg.gitlab_token:
            raise InvalidParameterValue(
                "GITLAB_TOKEN is not set: a project access token with the api scope and the "
                "Reporter role (the CI job token cannot write merge-request notes)"
            )
        api = ApiClient(
            cfg.gitlab_api_url,
            {"PRIVATE-TOKEN": cfg.gitlab_token},
            "GitLab",
            "GITLAB_TOKEN needs the api scope and at least the Reporter role on the project",
            **api_options,
        )
        return GitLabThread(
            api, cfg.gitlab_project_id, _positive(iid, "the merge request IID"), cfg.comment_user
        )
    if cfg.platform == "github":
        repo = cfg.github_repository
        if not repo or not _REPO.fullmatch(repo):
            raise InvalidParameterValue(f"GITHUB_REPOSITORY is not owner/name: {repo!r}")
        if not cfg.github_token:
            raise InvalidParameterValue(
                "GITHUB_TOKEN is not set: pass it to the step (env: GITHUB_TOKEN: "
                "${{ github.token }}) with permissions pull-requests: write"
            )
        pr = number if number is not None else pr_number_from_event(cfg.github_event_path)
        if pr is None:
            raise InvalidParameterValue(
                "no pull request number in this event (GITHUB_EVENT_PATH): run on pull_request, "
                "or pass --pr N"
            )
        api = ApiClient(
            cfg.github_api_url,
            {
                "Authorization": f"Bearer {cfg.github_token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            },
            "GitHub",
            "the token needs pull-requests: write (issues: write on a classic token: repo scope)",
            **api_options,
        )
        return GitHubThread(api, repo, _positive(pr, "the pull request number"), cfg.comment_user)
    raise InvalidParameterValue(
        "not in GitHub Actions or GitLab CI (no GITHUB_REPOSITORY or CI_API_V4_URL): nowhere to comment"
    )
