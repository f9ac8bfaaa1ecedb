"""A real HTTP server on 127.0.0.1 speaking GitHub's issue-comment API and GitLab's notes API.

Only what `gitml ci comment` calls, in the platforms' shapes (checked against GitHub's
OpenAPI description in test_openapi.py): list with pagination (GitHub's `Link`, GitLab's
`X-Next-Page`), create, update, delete, and the token's user. Threads, bounded: the server
answers on a thread per request and is shut down by the fixture.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["ACTIONS_TOKEN", "FakeApi", "serve"]

ACTIONS_TOKEN = (
    "actions-token"  # behaves like an Actions GITHUB_TOKEN: no /user, comments as the bot
)
_STAMP = "2026-12-01T00:00:00Z"


@dataclass
class FakeApi:
    """The server's state: comments by id, tokens, the request log, answers to inject."""

    tokens: dict[str, str] = field(
        default_factory=lambda: {
            ACTIONS_TOKEN: "github-actions[bot]",
            "pat": "alice",
            "gl": "project_1_bot",
        }
    )
    read_only: set[str] = field(default_factory=set)
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> {body, login}
    log: list[tuple[str, str]] = field(default_factory=list)
    inject: list[tuple[int, dict[str, str], Any]] = field(default_factory=list)  # next answers
    next_id: int = 1000
    list_gate: threading.Barrier | None = None  # hold the first lists until all jobs listed
    lock: threading.Lock = field(default_factory=threading.Lock)
    base: str = ""

    def add(self, body: str, login: str) -> int:
        """Put a comment in the thread directly (as if someone had posted it)."""
        with self.lock:
            self.next_id += 1
            self.comments[self.next_id] = {"body": body, "login": login}
            return self.next_id

    def calls(self, method: str | None = None) -> list[tuple[str, str]]:
        """The requests seen, optionally of one method."""
        return [c for c in self.log if method is None or c[0] == method]

    # -- shapes --------------------------------------------------------------------------
    def gh_user(self, login: str) -> dict[str, Any]:
        u = f"{self.base}/users/{login}"
        return {
            "login": login, "id": abs(hash(login)) % 10**6, "node_id": "U_1", "avatar_url": u,
            "gravatar_id": "", "url": u, "html_url": u, "followers_url": u, "following_url": u,
            "gists_url": u, "starred_url": u, "subscriptions_url": u, "organizations_url": u,
            "repos_url": u, "events_url": u, "received_events_url": u,
            "type": "Bot" if login.endswith("[bot]") else "User", "site_admin": False,
        }  # fmt: skip

    def gh_comment(self, cid: int, owner: str, repo: str, number: int) -> dict[str, Any]:
        c = self.comments[cid]
        api = f"{self.base}/repos/{owner}/{repo}"
        return {
            "id": cid, "node_id": f"IC_{cid}", "url": f"{api}/issues/comments/{cid}",
            "html_url": f"https://github.example/{owner}/{repo}/pull/{number}#issuecomment-{cid}",
            "body": c["body"], "user": self.gh_user(c["login"]), "created_at": _STAMP,
            "updated_at": _STAMP, "issue_url": f"{api}/issues/{number}",
            "author_association": "NONE",
        }  # fmt: skip

    def gl_note(self, cid: int, iid: int) -> dict[str, Any]:
        c = self.comments[cid]
        return {
            "id": cid, "type": None, "body": c["body"], "attachment": None,
            "author": {"id": 7, "username": c["login"], "name": c["login"], "state": "active"},
            "created_at": _STAMP, "updated_at": _STAMP, "system": c.get("system", False),
            "noteable_id": 1, "noteable_type": "MergeRequest", "noteable_iid": iid,
            "resolvable": False, "confidential": False, "internal": False,
        }  # fmt: skip


_GH_LIST = re.compile(r"^/repos/([^/]+)/([^/]+)/issues/(\d+)/comments$")
_GH_ONE = re.compile(r"^/repos/([^/]+)/([^/]+)/issues/comments/(\d+)$")
_GL_LIST = re.compile(r"^/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes$")
_GL_ONE = re.compile(r"^/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes/(\d+)$")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        raw = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if raw:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _handle(self) -> None:
        api = self.server.api
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        length = int(self.headers.get("Content-Length") or 0)
        data = json.loads(self.rfile.read(length)) if length else None
        with api.lock:
            api.log.append((self.command, url.path))
            injected = api.inject.pop(0) if api.inject else None
        if injected is not None:
            status, headers, body = injected
            return self._send(status, body, headers)
        if url.path.startswith("/api/v4/"):
            return self._gitlab(url.path, query, data)
        return self._github(url.path, query, data)

    def _hold(self) -> None:
        gate = self.server.api.list_gate
        if gate is not None:
            try:
                gate.wait(timeout=60)
            except threading.BrokenBarrierError:
                pass
            self.server.api.list_gate = None

    def _auth(self, token: str | None) -> str | None:
        login = self.server.api.tokens.get(token or "")
        return login

    def _github(self, path: str, query: dict[str, str], data: Any) -> None:
        api = self.server.api
        auth = self.headers.get("Authorization") or ""
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
        login = self._auth(token)
        if login is None:
            return self._send(
                401,
                {
                    "message": "Bad credentials",
                    "documentation_url": "https://docs.github.com/rest",
                    "status": "401",
                },
            )
        if path == "/user":
            if token == ACTIONS_TOKEN:
                return self._send(
                    403, {"message": "Resource not accessible by integration", "status": "403"}
                )
            profile = {"name": login, "company": None, "blog": "", "location": None, "email": None,
                       "hireable": None, "bio": None, "public_repos": 0, "public_gists": 0,
                       "followers": 0, "following": 0, "created_at": _STAMP, "updated_at": _STAMP}  # fmt: skip
            return self._send(200, {**api.gh_user(login), **profile})
        writes = self.command in ("POST", "PATCH", "DELETE")
        if writes and token in api.read_only:
            return self._send(
                403, {"message": "Resource not accessible by integration", "status": "403"}
            )
        m = _GH_LIST.match(path)
        if m:
            owner, repo, number = m.group(1), m.group(2), int(m.group(3))
            if self.command == "GET":
                per = min(int(query.get("per_page", 30)), 100)
                page = int(query.get("page", 1))
                with api.lock:
                    ids = sorted(api.comments)
                    items = [
                        api.gh_comment(i, owner, repo, number)
                        for i in ids[(page - 1) * per : page * per]
                    ]
                self._hold()  # after the snapshot: every held job saw the same thread
                headers = {}
                last = max(1, -(-len(ids) // per))
                if page < last:
                    nxt = f"{api.base}{path}?per_page={per}&page={page + 1}"
                    end = f"{api.base}{path}?per_page={per}&page={last}"
                    headers["Link"] = f'<{nxt}>; rel="next", <{end}>; rel="last"'
                return self._send(200, items, headers)
            if self.command == "POST":
                cid = api.add(str(data["body"]), login)
                with api.lock:
                    return self._send(201, api.gh_comment(cid, owner, repo, number))
        m = _GH_ONE.match(path)
        if m:
            owner, repo, cid = m.group(1), m.group(2), int(m.group(3))
            with api.lock:
                if cid not in api.comments:
                    return self._send(404, {"message": "Not Found", "status": "404"})
                if self.command == "PATCH":
                    api.comments[cid]["body"] = str(data["body"])
                    return self._send(200, api.gh_comment(cid, owner, repo, 1))
                if self.command == "DELETE":
                    del api.comments[cid]
                    return self._send(204)
        return self._send(404, {"message": "Not Found", "status": "404"})

    def _gitlab(self, path: str, query: dict[str, str], data: Any) -> None:
        api = self.server.api
        token = self.headers.get("PRIVATE-TOKEN")
        login = self._auth(token)
        if login is None:
            return self._send(401, {"message": "401 Unauthorized"})
        if path == "/api/v4/user":
            return self._send(
                200, {"id": 7, "username": login, "name": login, "state": "active", "bot": True}
            )
        if self.command != "GET" and token in api.read_only:
            return self._send(403, {"message": "403 Forbidden"})
        m = _GL_LIST.match(path)
        if m:
            iid = int(m.group(2))
            if self.command == "GET":
                per = min(int(query.get("per_page", 20)), 100)
                page = int(query.get("page", 1))
                with api.lock:
                    ids = sorted(api.comments)
                    items = [api.gl_note(i, iid) for i in ids[(page - 1) * per : page * per]]
                total = max(1, -(-len(ids) // per))
                headers = {"X-Page": str(page), "X-Per-Page": str(per), "X-Total": str(len(ids)),
                           "X-Total-Pages": str(total), "X-Next-Page": str(page + 1) if page < total else ""}  # fmt: skip
                return self._send(200, items, headers)
            if self.command == "POST":
                cid = api.add(str(data["body"]), login)
                with api.lock:
                    return self._send(201, api.gl_note(cid, iid))
        m = _GL_ONE.match(path)
        if m:
            iid, cid = int(m.group(2)), int(m.group(3))
            with api.lock:
                if cid not in api.comments:
                    return self._send(404, {"message": "404 Not found"})
                if self.command == "PUT":
                    api.comments[cid]["body"] = str(data["body"])
                    return self._send(200, api.gl_note(cid, iid))
                if self.command == "DELETE":
                    del api.comments[cid]
                    return self._send(204)
        return self._send(404, {"message": "404 Not found"})

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: FakeApi


@contextmanager
def serve(api: FakeApi | None = None) -> Iterator[FakeApi]:
    """Run the fake on 127.0.0.1 (a free port) for the `with` block; yields its state."""
    api = api or FakeApi()
    server = _Server(("127.0.0.1", 0), _Handler)
    server.api = api
    api.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
