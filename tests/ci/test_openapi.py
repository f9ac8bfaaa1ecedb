"""The fake GitHub API cannot drift from the real one: its paths, methods, statuses and
shapes are checked against GitHub's published OpenAPI description (npm @octokit/openapi,
installed by `make tools` under .tools/)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from gitml.ci.platforms import GitHubThread
from tests.ci.fake_api import ACTIONS_TOKEN, FakeApi, serve

SPEC = (
    Path(__file__).resolve().parents[2]
    / ".tools/node_modules/@octokit/openapi/generated/api.github.com.deref.json"
)
LIST = "/repos/{owner}/{repo}/issues/{issue_number}/comments"
ONE = "/repos/{owner}/{repo}/issues/comments/{comment_id}"

pytestmark = pytest.mark.skipif(
    not SPEC.exists(),
    reason="@octokit/openapi is not installed (make tools installs it under .tools/)",
)


@cache
def spec() -> dict[str, Any]:
    with open(SPEC) as f:
        return dict(json.load(f))


def _nullable(schema: Any) -> Any:
    """OpenAPI 3.0's `nullable: true` as JSON Schema's type list, recursively."""
    if isinstance(schema, dict):
        out = {k: _nullable(v) for k, v in schema.items()}
        if out.pop("nullable", False) and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(schema, list):
        return [_nullable(v) for v in schema]
    return schema


def validate(value: Any, schema: dict[str, Any]) -> None:
    import jsonschema

    jsonschema.Draft7Validator(_nullable(schema)).validate(value)


def response_schema(path: str, method: str, status: str) -> dict[str, Any]:
    content = spec()["paths"][path][method]["responses"][status]["content"]
    return dict(content["application/json"]["schema"])


@pytest.fixture
def api() -> Iterator[FakeApi]:
    with serve() as fake:
        yield fake


def call(
    api: FakeApi, method: str, path: str, body: Any = None, token: str = ACTIONS_TOKEN
) -> tuple[int, Any, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        api.base + path, data=data, method=method, headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        raw = r.read()
        return r.status, (json.loads(raw) if raw else None), r.headers


@pytest.mark.parametrize(
    ("path", "method", "status"),
    [
        (LIST, "get", "200"),
        (LIST, "post", "201"),
        (ONE, "patch", "200"),
        (ONE, "delete", "204"),
        ("/user", "get", "200"),
    ],
)
def test_every_call_the_client_makes_is_in_the_spec(path: str, method: str, status: str) -> None:
    assert status in spec()["paths"][path][method]["responses"]


def test_list_pages_by_per_page_and_page_with_a_link_header() -> None:
    get = spec()["paths"][LIST]["get"]
    names = {p["name"] for p in get["parameters"]}
    assert {"per_page", "page"} <= names
    per_page = next(p for p in get["parameters"] if p["name"] == "per_page")
    assert "max 100" in per_page["description"]
    assert "Link" in get["responses"]["200"]["headers"]
    assert spec()["paths"][LIST]["post"]["requestBody"]["content"]["application/json"]["schema"][
        "required"
    ] == ["body"]


def test_fake_answers_match_the_spec_shapes(api: FakeApi) -> None:
    for i in range(105):
        api.add(f"c{i}", "bob")
    status, created, _ = call(api, "POST", "/repos/acme/shop/issues/7/comments", {"body": "hi"})
    assert status == 201
    validate(created, response_schema(LIST, "post", "201"))
    status, listed, headers = call(
        api, "GET", "/repos/acme/shop/issues/7/comments?per_page=100&page=1"
    )
    assert status == 200 and len(listed) == 100 and 'rel="next"' in headers["Link"]
    validate(listed, response_schema(LIST, "get", "200"))
    status, updated, _ = call(
        api, "PATCH", f"/repos/acme/shop/issues/comments/{created['id']}", {"body": "ho"}
    )
    validate(updated, response_schema(ONE, "patch", "200"))
    assert call(api, "DELETE", f"/repos/acme/shop/issues/comments/{created['id']}")[0] == 204
    status, user, _ = call(api, "GET", "/user", token="pat")
    validate(user, response_schema("/user", "get", "200")["oneOf"][1])  # the public-user shape


def test_client_paths_are_the_specs_templates(api: FakeApi) -> None:
    from gitml.ci.http import ApiClient

    client = ApiClient(api.base, {"Authorization": f"Bearer {ACTIONS_TOKEN}"}, "GitHub", "-")
    thread = GitHubThread(client, "acme/shop", 7)
    made = thread.create("x")
    thread.update(made.id, "y")
    thread.list_comments()
    thread.delete(made.id)
    templates = {
        ("POST", LIST), ("PATCH", ONE), ("GET", LIST), ("DELETE", ONE),
    }  # fmt: skip
    seen = set()
    for method, path in api.log:
        parts = path.split("/")
        if path.endswith("/comments"):
            template = LIST if parts[-2].isdigit() else None
        else:
            template = ONE
        seen.add((method, template))
        assert template is not None and method.lower() in spec()["paths"][template]
    assert seen == templates
