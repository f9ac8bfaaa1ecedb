"""A small JSON client for the GitHub and GitLab REST APIs, on the standard library.

`urllib.request`, not httpx: the comment step makes a handful of calls per job, and
httpx is only a test dependency of gitml; a runtime dependency for five requests is not
worth its install. What a client library would add is written out here, bounded:
rate-limit answers wait for the time the API gives (at most `max_wait_s`, `max_retries`
times), 5xx answers retry, and every failure becomes one line naming the HTTP status and,
for 401/403, the permission the token needs.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gitml.exceptions import RemoteError

__all__ = ["ApiClient", "ApiError", "Response"]

_MAX_BODY = 64 * 1024 * 1024  # 100 comments of 65,536 characters, with room to spare
_RETRY_STATUSES = {500, 502, 503, 504}


class ApiError(RemoteError):
    """An HTTP answer that is not a success; `status` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int, error_code: str | None = None) -> None:
        super().__init__(message, error_code)
        self.status = status


@dataclass(frozen=True)
class Response:
    """A parsed answer: status, headers (lower-cased names) and the JSON body (None if empty)."""

    status: int
    headers: Mapping[str, str]
    body: Any

    def header(self, name: str) -> str | None:
        """A header's value by case-insensitive name."""
        return self.headers.get(name.lower())


@dataclass
class ApiClient:
    """Calls one API root with one set of headers; `name` and `permission` make the errors."""

    base_url: str
    headers: Mapping[str, str]
    name: str  # "GitHub" or "GitLab", for messages
    permission: str  # what the token needs, for 401/403 messages
    timeout_s: float = 30.0
    max_retries: int = 3
    max_wait_s: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    calls: list[tuple[str, str]] = field(default_factory=list, repr=False)

    def url(self, path: str, query: Mapping[str, str | int] | None = None) -> str:
        """The absolute URL of an API path."""
        url = self.base_url.rstrip("/") + "/" + path.lstrip("/")
        return url + ("?" + urllib.parse.urlencode(query) if query else "")

    def same_origin(self, url: str) -> bool:
        """Whether `url` points at this API's host (pagination links are followed only then)."""
        a, b = urllib.parse.urlsplit(self.base_url), urllib.parse.urlsplit(url)
        return (a.scheme, a.netloc) == (b.scheme, b.netloc)

    def request(self, method: str, url: str, body: Any = None) -> Response:
        """Send one request (retrying rate limits and 5xx, bounded) and parse the JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json", "User-Agent": "gitml-ci", **self.headers}
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(self.max_retries + 1):
            self.calls.append((method, url))
            req = urllib.request.Request(url, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as answer:
                    return _parse(answer.status, answer.headers, answer.read(_MAX_BODY + 1))
            except urllib.error.HTTPError as e:
                got = _parse(e.code, e.headers, e.read(_MAX_BODY + 1), strict=False)
                e.close()
                wait = self._retry_after(got, attempt)
                if wait is None:
                    raise self._error(method, url, got) from None
                self.sleep(wait)
            except (urllib.error.URLError, OSError) as e:
                reason = getattr(e, "reason", e)
                host = urllib.parse.urlsplit(url).netloc
                raise ApiError(f"cannot reach {self.name} at {host}: {reason}", 0) from e
        raise AssertionError("unreachable")  # the last attempt either returns or raises

    def _retry_after(self, got: Response, attempt: int) -> float | None:
        """Seconds to wait before retrying, or None when the answer is final."""
        if attempt >= self.max_retries:
            return None
        if got.status in _RETRY_STATUSES:
            return min(2.0**attempt, self.max_wait_s)
        if not _is_rate_limit(got):
            return None
        wait = _rate_limit_wait(got)
        return wait if wait <= self.max_wait_s else None

    def _error(self, method: str, url: str, got: Response) -> ApiError:
        path = urllib.parse.urlsplit(url).path
        what = f"{self.name} answered {got.status} to {method} {path}"
        detail = _message(got.body)
        if _is_rate_limit(got):
            wait = _rate_limit_wait(got)
            return ApiError(
                f"{what}: rate limited; retry after {wait:.0f} s (this step waits at most "
                f"{self.max_wait_s:.0f} s, {self.max_retries} times)",
                got.status,
                "TEMPORARILY_UNAVAILABLE",
            )
        if got.status == 401:
            return ApiError(
                f"{what}: the token is missing, expired or invalid; {self.permission}",
                401,
                "PERMISSION_DENIED",
            )
        if got.status == 403:
            return ApiError(
                f"{what}: the token may not do this ({detail or 'forbidden'}); {self.permission}",
                403,
                "PERMISSION_DENIED",
            )
        if got.status == 404:
            return ApiError(
                f"{what}: not found (a wrong repository or number, or a token that cannot see it)",
                404,
                "RESOURCE_DOES_NOT_EXIST",
            )
        return ApiError(f"{what}{': ' + detail if detail else ''}", got.status)


def _parse(status: int, headers: Any, raw: bytes, strict: bool = True) -> Response:
    if len(raw) > _MAX_BODY:
        raise ApiError(f"an API answer over {_MAX_BODY} bytes (status {status})", status)
    names = {k.lower(): v for k, v in (headers.items() if headers is not None else [])}
    body: Any = None
    if raw.strip():
        try:
            body = json.loads(raw)
        except ValueError:
            if strict:
                raise ApiError(
                    f"an API answer that is not JSON (status {status})", status
                ) from None
            body = raw[:300].decode("utf-8", "replace")
    return Response(status, names, body)


def _message(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("message", "error", "error_description"):
            value = body.get(key)
            if isinstance(value, str | list | dict):
                return " ".join(str(value).split())[:200]
    if isinstance(body, str):
        return " ".join(body.split())[:200]
    return ""


def _is_rate_limit(got: Response) -> bool:
    if got.status == 429:
        return True
    if got.status != 403:
        return False
    # GitHub answers 403 for both: a rate limit says so in its headers, or (a secondary
    # limit without headers) in its message.
    if got.header("retry-after") is not None or got.header("x-ratelimit-remaining") == "0":
        return True
    return "rate limit" in _message(got.body).lower()


def _rate_limit_wait(got: Response, now: Callable[[], float] = time.time) -> float:
    """The API's own figure: Retry-After seconds, else the reset time; a minute when silent."""
    after = got.header("retry-after")
    if after is not None:
        try:
            return max(0.0, float(after))
        except ValueError:
            pass
    for name in ("x-ratelimit-reset", "ratelimit-reset"):
        reset = got.header(name)
        if reset is not None:
            try:
                return max(0.0, float(reset) - now())
            except ValueError:
                continue
    return 60.0  # GitHub's advice for secondary limits that give no time
