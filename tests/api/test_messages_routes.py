"""What every route of contract 5.2 shares: authentication (401), malformed ids (400), malformed JSON (400),
outsiders (403), unknown ids (404), wrong methods (405) and a viewer's read-only access (4.5)."""

from __future__ import annotations

import asyncpg
import httpx

from tests.support.api import Api, Persona
from tests.support.messages import Room, insert_thread, open_room, post_root, reply
from tests.support.problems import assert_problem

UNKNOWN = "0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80"
FORBIDDEN, NOT_FOUND = "RGP.RBAC.FORBIDDEN", "RGP.NOT_FOUND"
BODIES = {"root": {"content": "hi"}, "reply": {"content": "hi"}, "edit": {"content": "hi"}}

# Every route of 5.2 but cancel (section 9), with the name of its id parameter.
CONVERSATION_ROUTES = [
    ("POST", "/api/threads/{conversation_id}/root"),
    ("GET", "/api/conversations/{conversation_id}/threads"),
    ("GET", "/api/conversations/{conversation_id}/unread"),
]
MESSAGE_ROUTES = [
    ("POST", "/api/messages/{parent_id}/reply"),
    ("GET", "/api/threads/{root_id}/tree"),
    ("GET", "/api/messages/{message_id}/chunks"),
    ("POST", "/api/messages/{message_id}/edit"),
    ("POST", "/api/messages/{message_id}/delete"),
    ("POST", "/api/messages/{message_id}/restore"),
    ("POST", "/api/threads/{root_id}/read"),
]
ROUTES = CONVERSATION_ROUTES + MESSAGE_ROUTES


def fill(template: str, conversation_id: str, root_id: str, message_id: str) -> str:
    return template.format(
        conversation_id=conversation_id, root_id=root_id, message_id=message_id, parent_id=message_id
    )


def body_of(path: str) -> dict[str, str] | None:
    return BODIES.get(path.rsplit("/", 1)[-1])


async def call(api: Api, user: Persona, method: str, path: str) -> httpx.Response:
    return await api.request(method, path, user, json=body_of(path))


async def room_with_thread(api: Api) -> tuple[Room, str, str]:
    room = await open_room(api)
    root_id = await post_root(api, room.bob, room.id)
    return room, root_id, await reply(api, room.bob, root_id)


async def test_every_route_needs_a_session(api: Api) -> None:
    room, root_id, reply_id = await room_with_thread(api)

    async with httpx.AsyncClient(base_url=api.url) as anonymous:  # api.http keeps the login cookies
        for method, template in ROUTES:
            path = fill(template, room.id, root_id, reply_id)
            response = await anonymous.request(method, path, json=body_of(path))
            assert_problem(response, 401, "RGP.AUTH.MISSING_SESSION")


async def test_malformed_ids_in_the_path_are_bad_requests_naming_the_parameter(api: Api) -> None:
    room = await open_room(api)

    for bad in ("not-a-uuid", UNKNOWN.replace("-", ""), UNKNOWN[:-1], "{" + UNKNOWN + "}", UNKNOWN + "0"):
        for method, template in ROUTES:
            response = await call(api, room.alice, method, fill(template, bad, bad, bad))
            problem = assert_problem(response, 400, "invalid_request")
            assert [e["field"] for e in problem["details"]["errors"]] == [
                template.split("{")[1].split("}")[0]
            ]


async def test_upper_case_ids_are_accepted(api: Api) -> None:
    room, root_id, _ = await room_with_thread(api)

    response = await api.get(f"/api/threads/{root_id.upper()}/tree", room.bob)

    assert response.status_code == 200
    assert response.json()["root_id"] == root_id


async def test_malformed_json_is_a_bad_request_on_every_route_with_a_request_body(api: Api) -> None:
    room, root_id, reply_id = await room_with_thread(api)
    headers = {"Content-Type": "application/json"}

    for method, template in ROUTES:
        if method == "POST" and not template.endswith("/restore"):  # restore takes no body
            path = fill(template, room.id, root_id, reply_id)
            response = await api.post(path, room.alice, content=b'{"content": "hi",}', headers=headers)
            assert_problem(response, 400, "invalid_request")


async def test_outsiders_are_forbidden_everywhere(api: Api) -> None:
    room, root_id, reply_id = await room_with_thread(api)

    for method, template in ROUTES:
        response = await call(api, room.dave, method, fill(template, room.id, root_id, reply_id))
        assert_problem(response, 403, FORBIDDEN)


async def test_a_participant_who_left_is_an_outsider(api: Api) -> None:
    room, root_id, reply_id = await room_with_thread(api)
    left = await api.delete(f"/api/conversations/{room.id}/participants/{room.carol.id}", room.carol)
    assert left.status_code == 204

    for method, template in ROUTES:
        response = await call(api, room.carol, method, fill(template, room.id, root_id, reply_id))
        assert_problem(response, 403, FORBIDDEN)


async def test_unknown_messages_and_thread_roots_are_not_found(api: Api) -> None:
    room, _, _ = await room_with_thread(api)

    for method, template in MESSAGE_ROUTES:
        response = await call(api, room.alice, method, fill(template, room.id, UNKNOWN, UNKNOWN))
        assert_problem(response, 404, NOT_FOUND)


async def test_unknown_conversations_are_forbidden(api: Api) -> None:
    room, _, _ = await room_with_thread(api)

    for method, template in CONVERSATION_ROUTES:
        assert_problem(await call(api, room.alice, method, fill(template, UNKNOWN, "", "")), 403, FORBIDDEN)


async def test_a_reply_is_not_a_thread_root(api: Api) -> None:
    room, _, reply_id = await room_with_thread(api)

    assert_problem(await api.get(f"/api/threads/{reply_id}/tree", room.bob), 404, NOT_FOUND)
    assert_problem(await api.post(f"/api/threads/{reply_id}/read", room.bob), 404, NOT_FOUND)


async def test_unknown_ids_are_checked_before_membership(api: Api) -> None:
    room = await open_room(api)

    for method, template in MESSAGE_ROUTES:
        response = await call(api, room.dave, method, fill(template, room.id, UNKNOWN, UNKNOWN))
        assert_problem(response, 404, NOT_FOUND)


async def test_wrong_methods_are_not_allowed(api: Api) -> None:
    room, root_id, reply_id = await room_with_thread(api)

    for method, template in ROUTES:
        other = "GET" if method == "POST" else "POST"
        response = await api.request(other, fill(template, room.id, root_id, reply_id), room.bob)
        assert_problem(response, 405, "method_not_allowed")
        assert method in response.headers["allow"]


async def test_viewers_read_and_mark_read_but_write_nothing(api: Api, pool: asyncpg.Pool) -> None:
    room, root_id, reply_id = await room_with_thread(api)
    (assistant_id,) = await insert_thread(pool, room.id, None, [None], role="assistant")
    writes = {"reply", "edit", "delete", "restore", "root"}

    for method, template in ROUTES:
        path = fill(template, room.id, root_id, reply_id)
        response = await call(api, room.carol, method, path)
        if path.rsplit("/", 1)[-1] in writes:
            assert_problem(response, 403, FORBIDDEN)
        else:
            assert response.status_code == 200, path
    for action in ("edit", "delete", "restore"):
        response = await call(api, room.carol, "POST", f"/api/messages/{assistant_id}/{action}")
        assert_problem(response, 403, FORBIDDEN)
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE author_user_id = $1", room.carol.id) == 0
