"""What every section-4 route does before its own rules (contract 1.7 check order): body limit (413),
authentication (401), CSRF on unsafe cookie requests (403), then parsing (400, 415, 422) before the route's
403/404/409/410."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.api import Api, Persona
from tests.support.conversations import add_participant, create_conversation, create_invite
from tests.support.problems import assert_problem


@dataclass(frozen=True)
class RouteCase:
    method: str
    path: str
    body: dict[str, str] | None
    success: int

    def url(self, names: dict[str, str]) -> str:
        return self.path.format(**names)

    def json(self, names: dict[str, str]) -> dict[str, str] | None:
        return None if self.body is None else {k: v.format(**names) for k, v in self.body.items()}

    @property
    def unsafe(self) -> bool:
        return self.method != "GET"


ROUTES = {
    "create-conversation": RouteCase("POST", "/api/conversations", {"title": "Plans"}, 201),
    "list-conversations": RouteCase("GET", "/api/conversations", None, 200),
    "view-conversation": RouteCase("GET", "/api/conversations/{cid}", None, 200),
    "add-participant": RouteCase(
        "POST", "/api/conversations/{cid}/participants", {"user_id": "{carol}"}, 204
    ),
    "remove-participant": RouteCase("DELETE", "/api/conversations/{cid}/participants/{bob}", None, 204),
    "create-invite": RouteCase("POST", "/api/conversations/{cid}/invites", {"email": "g@example.com"}, 201),
    "list-invites": RouteCase("GET", "/api/conversations/{cid}/invites", None, 200),
    "accept-invite": RouteCase("POST", "/api/invites/accept", {"token": "{token}"}, 200),
    "revoke-invite": RouteCase("POST", "/api/invites/{token}/revoke", None, 204),
}
ALL = [pytest.param(case, id=name) for name, case in ROUTES.items()]
UNSAFE = [pytest.param(case, id=name) for name, case in ROUTES.items() if case.unsafe]
SAFE = [pytest.param(case, id=name) for name, case in ROUTES.items() if not case.unsafe]
WITH_BODY = [pytest.param(case, id=name) for name, case in ROUTES.items() if case.body is not None]
WITH_CONVERSATION_ID = [pytest.param(case, id=name) for name, case in ROUTES.items() if "{cid}" in case.path]
DUMMY = {"cid": "0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80", "bob": "0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f81",
         "carol": "0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f82", "token": "A" * 43}  # fmt: skip


@dataclass
class Scene:
    alice: Persona  # owner of conversation `cid`, where bob is a member; `token` is an invite to it
    names: dict[str, str]


@pytest.fixture
async def scene(api: Api) -> Scene:
    alice, bob, carol = await api.persona("alice"), await api.persona("bob"), await api.persona("carol")
    conversation_id = await create_conversation(api, alice)
    await add_participant(api, alice, conversation_id, bob)
    token = await create_invite(api, alice, conversation_id)
    return Scene(alice, {"cid": conversation_id, "bob": str(bob.id), "carol": str(carol.id), "token": token})


async def send(
    client: httpx.AsyncClient, case: RouteCase, names: dict[str, str], **kwargs: Any
) -> httpx.Response:
    if "content" not in kwargs and case.body is not None:
        kwargs["json"] = case.json(names)
    return await client.request(case.method, case.url(names), **kwargs)


@pytest.mark.parametrize("case", ALL)
async def test_every_route_needs_a_session(api: Api, case: RouteCase) -> None:
    assert_problem(await send(api.http, case, DUMMY), 401, "RGP.AUTH.MISSING_SESSION")


@pytest.mark.parametrize("case", ALL)
async def test_bearer_requests_need_no_csrf_header(api: Api, scene: Scene, case: RouteCase) -> None:
    response = await send(api.http, case, scene.names, headers=scene.alice.bearer)
    assert response.status_code == case.success, response.text


@pytest.mark.parametrize("case", ALL)
async def test_cookie_requests_with_the_csrf_header_succeed(api: Api, scene: Scene, case: RouteCase) -> None:
    async with scene.alice.browser() as browser:
        response = await send(browser, case, scene.names)
    assert response.status_code == case.success, response.text


@pytest.mark.parametrize("case", UNSAFE)
async def test_unsafe_cookie_requests_without_the_csrf_header_are_refused(
    api: Api, scene: Scene, case: RouteCase
) -> None:
    async with scene.alice.browser(csrf=False) as browser:
        response = await send(browser, case, scene.names)
    assert_problem(response, 403, "RGP.AUTH.CSRF")


@pytest.mark.parametrize("case", UNSAFE)
async def test_unsafe_cookie_requests_with_a_wrong_csrf_header_are_refused(
    api: Api, scene: Scene, case: RouteCase
) -> None:
    async with scene.alice.browser(csrf=False) as browser:
        response = await send(browser, case, scene.names, headers={"X-CSRF-TOKEN": "not-the-cookie"})
    assert assert_problem(response, 403, "RGP.AUTH.CSRF")["message"] == "CSRF token mismatch"


@pytest.mark.parametrize("case", SAFE)
async def test_safe_cookie_requests_need_no_csrf_header(api: Api, scene: Scene, case: RouteCase) -> None:
    async with scene.alice.browser(csrf=False) as browser:
        response = await send(browser, case, scene.names)
    assert response.status_code == 200, response.text


async def test_the_csrf_check_comes_before_parsing(api: Api, scene: Scene) -> None:
    async with scene.alice.browser(csrf=False) as browser:
        response = await browser.post(
            "/api/conversations", content=b"{", headers={"Content-Type": "application/json"}
        )
    assert_problem(response, 403, "RGP.AUTH.CSRF")


@pytest.mark.parametrize("case", WITH_BODY)
async def test_malformed_json_is_400(api: Api, scene: Scene, case: RouteCase) -> None:
    response = await send(
        api.http,
        case,
        scene.names,
        content=b'{"title": ',
        headers={**scene.alice.bearer, "Content-Type": "application/json"},
    )
    assert_problem(response, 400, "invalid_request")


@pytest.mark.parametrize("case", WITH_BODY)
async def test_a_body_that_is_not_json_is_415(api: Api, scene: Scene, case: RouteCase) -> None:
    response = await send(
        api.http,
        case,
        scene.names,
        content=b"title=x",
        headers={**scene.alice.bearer, "Content-Type": "text/plain"},
    )
    assert_problem(response, 415, "unsupported_media_type")


@pytest.mark.parametrize("case", WITH_BODY)
@pytest.mark.parametrize("body", [b"[]", b'"text"', b"{}"], ids=["array", "string", "empty-object"])
async def test_json_that_does_not_fit_the_request_is_422(
    api: Api, scene: Scene, case: RouteCase, body: bytes
) -> None:
    headers = {**scene.alice.bearer, "Content-Type": "application/json; charset=utf-8"}
    response = await send(api.http, case, scene.names, content=body, headers=headers)
    problem = assert_problem(response, 422, "validation_failed")
    assert problem["details"]["errors"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/conversations/{cid}/participants", {"user_id": "0193a5b27c1e7d3a9f213b4c5d6e7f80"}),
        ("/api/conversations/{cid}/participants", {"user_id": 42}),
        ("/api/conversations/{cid}/participants", {"user_id": "{carol}", "role": "superuser"}),
        ("/api/conversations/{cid}/participants", {"user_id": "{carol}", "role": 1}),
        ("/api/conversations/{cid}/invites", {"email": ["g@example.com"]}),
        ("/api/conversations/{cid}/invites", {"email": "g@example.com", "ttl_seconds": True}),
    ],
    ids=["unhyphenated-uuid", "number-uuid", "unknown-role", "numeric-role", "email-list", "ttl-bool"],
)
async def test_wrong_field_types_are_422(api: Api, scene: Scene, path: str, body: dict[str, Any]) -> None:
    json_body = {k: v.format(**scene.names) if isinstance(v, str) else v for k, v in body.items()}
    response = await api.post(path.format(**scene.names), scene.alice, json=json_body)
    problem = assert_problem(response, 422, "validation_failed")
    assert problem["details"]["errors"][0]["field"] in body


@pytest.mark.parametrize("case", WITH_CONVERSATION_ID)
@pytest.mark.parametrize(
    "bad", ["not-a-uuid", "0193a5b27c1e7d3a9f213b4c5d6e7f80", "0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f8g"]
)
async def test_a_malformed_conversation_id_is_400(api: Api, scene: Scene, case: RouteCase, bad: str) -> None:
    # Even with a malformed body: the path is parsed first.
    headers = {**scene.alice.bearer, "Content-Type": "application/json"}
    kwargs: dict[str, Any] = {"content": b"{", "headers": headers} if case.body else {"headers": headers}
    response = await send(api.http, case, {**scene.names, "cid": bad}, **kwargs)
    problem = assert_problem(response, 400, "invalid_request")
    assert problem["details"]["errors"][0]["field"] == "conversation_id"


async def test_a_malformed_user_id_in_the_path_is_400(api: Api, scene: Scene) -> None:
    response = await api.delete(f"/api/conversations/{scene.names['cid']}/participants/bob", scene.alice)
    problem = assert_problem(response, 400, "invalid_request")
    assert problem["details"]["errors"][0]["field"] == "user_id"


@pytest.mark.parametrize("case", UNSAFE)
async def test_an_oversized_body_is_413_before_authentication(api: Api, case: RouteCase) -> None:
    body = b'{"title": "' + b"x" * 65_536 + b'"}'
    response = await send(api.http, case, DUMMY, content=body, headers={"Content-Type": "application/json"})
    assert_problem(response, 413, "payload_too_large")


async def test_a_body_at_the_limit_is_parsed(api: Api) -> None:
    alice = await api.persona("alice")
    padding = 65_536 - len(b'{"title": "x", "pad": ""}')
    body = b'{"title": "x", "pad": "' + b" " * padding + b'"}'
    assert len(body) == 65_536
    response = await api.post(
        "/api/conversations", alice, content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("method", "path"),
    [("PUT", "/api/conversations"), ("DELETE", "/api/conversations/{cid}"), ("GET", "/api/invites/accept"),
     ("GET", "/api/invites/{token}/revoke"), ("PATCH", "/api/conversations/{cid}/participants/{bob}")],
)  # fmt: skip
async def test_a_wrong_method_is_405(api: Api, method: str, path: str) -> None:
    response = await api.http.request(method, path.format(**DUMMY))
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"]


async def test_parsing_comes_before_the_participant_check(api: Api, scene: Scene) -> None:
    outsider = await api.persona("dave")
    path = f"/api/conversations/{scene.names['cid']}"
    bad_body = await api.post(f"{path}/participants", outsider, json={"role": "member"})
    bad_json = await api.post(
        f"{path}/invites", outsider, content=b"{", headers={"Content-Type": "application/json"}
    )
    assert_problem(bad_body, 422, "validation_failed")
    assert_problem(bad_json, 400, "invalid_request")
    valid = await api.post(f"{path}/participants", outsider, json={"user_id": scene.names["bob"]})
    assert_problem(valid, 403, "RGP.RBAC.FORBIDDEN")
