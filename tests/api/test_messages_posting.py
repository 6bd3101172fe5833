"""Posting roots and replies (contract 5.1-5.3): responses, stored messages, who may post, the depth limit,
content limits, request parsing, and the order of the checks (1.7, 5.2)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from tests.support.api import Api
from tests.support.messages import insert_chain, open_room, post_root, reply, tree, view
from tests.support.problems import assert_problem
from threadline_shared.ids import path_label

FORBIDDEN, VALIDATION = "RGP.RBAC.FORBIDDEN", "validation_failed"


async def test_a_root_post_answers_its_ids_and_depth_one(api: Api) -> None:
    room = await open_room(api)

    response = await api.post(f"/api/threads/{room.id}/root", room.bob, json={"content": "hi"})

    assert response.status_code == 201
    body = response.json()
    assert body == {
        "message_id": body["message_id"],
        "root_id": body["message_id"],
        "conversation_id": room.id,
        "depth": 1,
    }
    assert UUID(body["message_id"]).version == 7


async def test_a_root_is_stored_as_sent_with_its_author_and_path(api: Api) -> None:
    room = await open_room(api)

    root_id = await post_root(api, room.bob, room.id, "  spaced out \n")

    root = await view(api, room.alice, root_id, root_id)
    assert root == {
        "id": root_id,
        "root_id": root_id,
        "conversation_id": room.id,
        "author_user_id": str(room.bob.id),
        "role": "user",
        "content": "  spaced out \n",
        "path": path_label(UUID(root_id)),
        "depth": 1,
        "created_at": root["created_at"],
        "status": "complete",
    }
    assert root["created_at"].endswith("Z") and len(root["created_at"]) == len("2025-03-08T14:30:00.123456Z")


async def test_a_reply_takes_the_parents_conversation_and_root_and_the_next_depth(api: Api) -> None:
    room = await open_room(api)
    root_id = await post_root(api, room.alice, room.id)
    child_id = await reply(api, room.bob, root_id)

    response = await api.post(f"/api/messages/{child_id}/reply", room.alice, json={"content": "deeper"})

    assert response.status_code == 201
    body = response.json()
    assert body == {
        "message_id": body["message_id"],
        "root_id": root_id,
        "conversation_id": room.id,
        "parent_id": child_id,
        "depth": 3,
    }
    grandchild = await view(api, room.bob, root_id, body["message_id"])
    child = await view(api, room.bob, root_id, child_id)
    assert grandchild["parent_id"] == child_id
    assert grandchild["path"] == f"{child['path']}.{path_label(UUID(body['message_id']))}"
    assert grandchild["author_user_id"] == str(room.alice.id)


async def test_any_writer_may_post_any_role_and_is_its_author(api: Api) -> None:
    room = await open_room(api)
    root_id = await post_root(api, room.bob, room.id, role="system")

    replies = {role: await reply(api, room.bob, root_id, role=role) for role in ("assistant", "tool", "user")}

    for role, message_id in {"system": root_id, **replies}.items():
        message = await view(api, room.alice, root_id, message_id)
        assert (message["role"], message["author_user_id"], message["status"]) == (
            role,
            str(room.bob.id),
            "complete",
        )


async def test_a_null_role_means_user(api: Api) -> None:
    room = await open_room(api)

    root_id = await post_root(api, room.bob, room.id, role=None)

    assert (await view(api, room.bob, root_id, root_id))["role"] == "user"


async def test_replying_to_a_deleted_message_is_allowed(api: Api) -> None:
    room = await open_room(api)
    root_id = await post_root(api, room.bob, room.id)
    assert (await api.post(f"/api/messages/{root_id}/delete", room.bob)).status_code == 204

    reply_id = await reply(api, room.alice, root_id)

    assert (await view(api, room.alice, root_id, reply_id))["parent_id"] == root_id


async def test_viewers_cannot_post_roots_or_replies(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    root_id = await post_root(api, room.bob, room.id)

    as_root = await api.post(f"/api/threads/{room.id}/root", room.carol, json={"content": "hi"})
    as_reply = await api.post(f"/api/messages/{root_id}/reply", room.carol, json={"content": "hi"})

    assert_problem(as_root, 403, FORBIDDEN)
    assert_problem(as_reply, 403, FORBIDDEN)
    assert await pool.fetchval("SELECT count(*) FROM messages") == 1


async def test_non_participants_cannot_post_roots_or_replies(api: Api) -> None:
    room = await open_room(api)
    root_id = await post_root(api, room.bob, room.id)

    as_root = await api.post(f"/api/threads/{room.id}/root", room.dave, json={"content": "hi"})
    as_reply = await api.post(f"/api/messages/{root_id}/reply", room.dave, json={"content": "hi"})

    assert_problem(as_root, 403, FORBIDDEN)
    assert_problem(as_reply, 403, FORBIDDEN)


async def test_a_participant_who_left_can_no_longer_post(api: Api) -> None:
    room = await open_room(api)
    root_id = await post_root(api, room.bob, room.id)
    assert (
        await api.delete(f"/api/conversations/{room.id}/participants/{room.bob.id}", room.bob)
    ).status_code == 204

    assert_problem(
        await api.post(f"/api/messages/{root_id}/reply", room.bob, json={"content": "x"}), 403, FORBIDDEN
    )


async def test_a_root_in_an_unknown_conversation_is_forbidden(api: Api) -> None:
    room = await open_room(api)

    response = await api.post(
        "/api/threads/0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80/root", room.alice, json={"content": "hi"}
    )

    assert_problem(response, 403, FORBIDDEN)


async def test_a_reply_to_an_unknown_message_is_not_found(api: Api) -> None:
    room = await open_room(api)

    response = await api.post(
        "/api/messages/0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80/reply", room.alice, json={"content": "hi"}
    )

    assert_problem(response, 404, "RGP.NOT_FOUND")


async def test_a_chain_of_replies_reaches_depth_64_but_not_65(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    parent_id = await post_root(api, room.bob, room.id)
    for _ in range(63):
        api.clock.advance(0.2)  # one post per 200 ms stays within the posting limit (5 per second)
        parent_id = await reply(api, room.bob, parent_id)

    too_deep = await api.post(f"/api/messages/{parent_id}/reply", room.bob, json={"content": "65"})

    assert_problem(too_deep, 422, VALIDATION)
    assert await pool.fetchval("SELECT max(depth) FROM messages") == 64
    assert await pool.fetchval("SELECT count(*) FROM messages") == 64


async def test_content_of_32000_code_points_is_accepted(api: Api) -> None:
    room = await open_room(api)
    content = "é" * 32_000  # 64,000 bytes of UTF-8: the limit counts code points

    root_id = await post_root(api, room.bob, room.id, content)

    assert (await view(api, room.bob, root_id, root_id))["content"] == content


async def test_content_over_32000_code_points_is_refused(api: Api) -> None:
    room = await open_room(api)

    response = await api.post(f"/api/threads/{room.id}/root", room.bob, json={"content": "x" * 32_001})

    body = assert_problem(response, 422, VALIDATION)
    assert [error["field"] for error in body["details"]["errors"]] == ["content"]


async def test_blank_or_missing_content_is_refused(api: Api) -> None:
    room = await open_room(api)
    root_id = await post_root(api, room.bob, room.id)

    for body in ({"content": " \t\n\u3000"}, {"content": ""}, {}, {"content": None}):
        assert_problem(await api.post(f"/api/threads/{room.id}/root", room.bob, json=body), 422, VALIDATION)
        assert_problem(await api.post(f"/api/messages/{root_id}/reply", room.bob, json=body), 422, VALIDATION)


async def test_bodies_of_the_wrong_shape_are_refused_naming_the_field(api: Api) -> None:
    room = await open_room(api)

    for body, field in (
        ({"content": 5}, "content"),
        ({"content": ["hi"]}, "content"),
        ({"content": "hi", "role": "robot"}, "role"),
        ({"content": "hi", "role": 1}, "role"),
        ({"content": "nul \u0000 cannot be stored"}, "content"),
    ):
        response = await api.post(f"/api/threads/{room.id}/root", room.bob, json=body)
        problem = assert_problem(response, 422, VALIDATION)
        assert field in [error["field"] for error in problem["details"]["errors"]]
    assert_problem(await api.post(f"/api/threads/{room.id}/root", room.bob, json=["hi"]), 422, VALIDATION)


async def test_unknown_fields_are_ignored(api: Api) -> None:
    room = await open_room(api)

    response = await api.post(
        f"/api/threads/{room.id}/root", room.bob, json={"content": "hi", "colour": "red"}
    )

    assert response.status_code == 201


async def test_a_body_that_is_not_json_is_an_unsupported_media_type(api: Api) -> None:
    room = await open_room(api)
    headers = {"Content-Type": "text/plain"}

    response = await api.post(
        f"/api/threads/{room.id}/root", room.bob, content=b'{"content": "hi"}', headers=headers
    )

    assert_problem(response, 415, "unsupported_media_type")


async def test_an_oversized_body_is_too_large_even_with_valid_content(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    content = "😀" * 20_000  # 20,000 code points, 80,000 bytes: the body limit is checked first

    response = await api.post(f"/api/threads/{room.id}/root", room.bob, json={"content": content})

    assert_problem(response, 413, "payload_too_large")
    assert await pool.fetchval("SELECT count(*) FROM messages") == 0


async def test_the_body_is_checked_before_the_parent_and_the_membership(api: Api) -> None:
    room = await open_room(api)
    unknown = "0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80"

    assert_problem(await api.post(f"/api/messages/{unknown}/reply", room.dave, json={}), 422, VALIDATION)
    assert_problem(await api.post(f"/api/threads/{room.id}/root", room.dave, json={}), 422, VALIDATION)


async def test_the_parent_is_checked_before_the_membership(api: Api) -> None:
    room = await open_room(api)

    response = await api.post(
        "/api/messages/0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80/reply", room.dave, json={"content": "hi"}
    )

    assert_problem(response, 404, "RGP.NOT_FOUND")


async def test_the_role_is_checked_before_the_depth(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    chain = await insert_chain(pool, room.id, room.bob.id, 64)

    for user in (room.carol, room.dave):
        response = await api.post(f"/api/messages/{chain[-1]}/reply", user, json={"content": "hi"})
        assert_problem(response, 403, FORBIDDEN)


async def test_a_deleted_parent_still_counts_for_the_depth(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    chain = await insert_chain(pool, room.id, room.bob.id, 64)
    assert (await api.post(f"/api/messages/{chain[-1]}/delete", room.bob)).status_code == 204

    response = await api.post(f"/api/messages/{chain[-1]}/reply", room.alice, json={"content": "hi"})

    assert_problem(response, 422, VALIDATION)
    assert len((await tree(api, room.alice, str(chain[0])))["messages"]) == 64
