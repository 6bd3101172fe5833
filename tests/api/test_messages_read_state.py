"""Read watermarks and unread counts, example by example (contract 5.2 mark read, 5.8); the property test in
``test_messages_unread.py`` compares them with a model over random histories."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from tests.support.api import Api, Persona
from tests.support.conversations import add_participant, insert_message, remove_participant
from tests.support.messages import insert_thread, open_room, post_root, reply, unread_counts
from tests.support.problems import assert_problem


async def mark_read(api: Api, user: Persona, root_id: str, message_id: str | None = None) -> int:
    body = {"message_id": message_id} if message_id else None
    response = await api.post(f"/api/threads/{root_id}/read", user, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["root_id"] == root_id
    unread: int = response.json()["unread"]
    return unread


async def test_others_messages_are_unread_until_marked_read(api: Api) -> None:
    room = await open_room(api)
    root = await post_root(api, room.alice, room.id)
    await reply(api, room.alice, root)
    await reply(api, room.bob, root)

    assert await unread_counts(api, room.carol, room.id) == {root: 3}
    assert await mark_read(api, room.carol, root) == 0
    assert await unread_counts(api, room.carol, room.id) == {}


async def test_marking_up_to_a_message_leaves_the_later_ones_unread(api: Api) -> None:
    room = await open_room(api)
    root = await post_root(api, room.alice, room.id)
    middle = await reply(api, room.alice, root)
    await reply(api, room.alice, middle)

    assert await mark_read(api, room.bob, root, middle) == 1
    assert await unread_counts(api, room.bob, room.id) == {root: 1}


async def test_the_watermark_never_moves_back(api: Api) -> None:
    room = await open_room(api)
    root = await post_root(api, room.alice, room.id)
    await reply(api, room.alice, root)

    assert await mark_read(api, room.bob, root) == 0
    assert await mark_read(api, room.bob, root, root) == 0


async def test_posting_marks_the_thread_read_for_the_author(api: Api) -> None:
    room = await open_room(api)
    root = await post_root(api, room.alice, room.id)
    await reply(api, room.alice, root)

    await reply(api, room.bob, root)

    assert await unread_counts(api, room.bob, room.id) == {}


async def test_viewers_may_mark_read(api: Api) -> None:
    room = await open_room(api)
    root = await post_root(api, room.alice, room.id)

    assert await mark_read(api, room.carol, root, root) == 0


async def test_deleted_messages_do_not_count_and_restored_ones_count_again(api: Api) -> None:
    room = await open_room(api)
    root = await post_root(api, room.alice, room.id)
    child = await reply(api, room.alice, root)
    assert (await api.post(f"/api/messages/{child}/delete", room.alice)).status_code == 204
    assert await unread_counts(api, room.bob, room.id) == {root: 1}

    assert (await api.post(f"/api/messages/{child}/restore", room.alice)).status_code == 204

    assert await unread_counts(api, room.bob, room.id) == {root: 2}


async def test_messages_without_an_author_count(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    root = await post_root(api, room.bob, room.id)
    await insert_thread(pool, room.id, None, [None], role="assistant")
    await insert_message(pool, room.id, None, await pool.fetchval("SELECT now()"), root=UUID(root))

    counts = await unread_counts(api, room.bob, room.id)

    assert sorted(counts.values()) == [1, 1]


async def test_messages_from_before_joining_do_not_count(api: Api) -> None:
    room = await open_room(api)
    erin = await api.persona("erin")
    root = await post_root(api, room.alice, room.id)
    await add_participant(api, room.alice, room.id, erin)
    await reply(api, room.alice, root)

    assert await unread_counts(api, erin, room.id) == {root: 1}


async def test_rejoining_starts_counting_from_the_new_membership(api: Api) -> None:
    room = await open_room(api)
    root = await post_root(api, room.alice, room.id)
    await remove_participant(api, room.alice, room.id, room.bob)
    await reply(api, room.alice, root)
    await add_participant(api, room.alice, room.id, room.bob)
    await reply(api, room.alice, root)

    assert await unread_counts(api, room.bob, room.id) == {root: 1}


async def test_the_summary_lists_unread_threads_newest_root_first(api: Api) -> None:
    room = await open_room(api)
    roots = [await post_root(api, room.alice, room.id) for _ in range(3)]
    await reply(api, room.alice, roots[0])
    await mark_read(api, room.bob, roots[1])

    response = await api.get(f"/api/conversations/{room.id}/unread", room.bob)

    assert response.json() == {
        "threads": [{"root_id": roots[2], "unread": 1}, {"root_id": roots[0], "unread": 2}]
    }


async def test_unread_total_sums_the_threads(api: Api) -> None:
    room = await open_room(api)
    roots = [await post_root(api, room.alice, room.id) for _ in range(2)]
    await reply(api, room.alice, roots[0])

    (summary,) = (await api.get("/api/conversations", room.bob)).json()["conversations"]

    assert summary["unread_total"] == 3


async def test_a_message_of_another_thread_is_not_found(api: Api) -> None:
    room = await open_room(api)
    root = await post_root(api, room.alice, room.id)
    other = await post_root(api, room.alice, room.id)
    unknown = "0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80"

    for message_id in (other, unknown):
        response = await api.post(f"/api/threads/{root}/read", room.bob, json={"message_id": message_id})
        assert_problem(response, 404, "RGP.NOT_FOUND")
    assert await unread_counts(api, room.bob, room.id) == {root: 1, other: 1}


async def test_a_malformed_message_id_in_the_body_fails_validation(api: Api) -> None:
    room = await open_room(api)
    root = await post_root(api, room.alice, room.id)

    for message_id in ("nope", root.replace("-", ""), 7):
        response = await api.post(f"/api/threads/{root}/read", room.bob, json={"message_id": message_id})
        problem = assert_problem(response, 422, "validation_failed")
        assert [error["field"] for error in problem["details"]["errors"]] == ["message_id"]


async def test_a_null_message_id_marks_everything_read(api: Api) -> None:
    room = await open_room(api)
    root = await post_root(api, room.alice, room.id)
    response = await api.post(f"/api/threads/{root}/read", room.bob, json={"message_id": None})

    assert response.status_code == 200 and response.json() == {"root_id": root, "unread": 0}


async def test_the_thread_is_checked_before_the_membership_and_the_message(api: Api) -> None:
    room = await open_room(api)
    root = await post_root(api, room.alice, room.id)
    unknown = "0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80"

    not_found = await api.post(f"/api/threads/{unknown}/read", room.dave, json={"message_id": unknown})
    forbidden = await api.post(f"/api/threads/{root}/read", room.dave, json={"message_id": unknown})

    assert_problem(not_found, 404, "RGP.NOT_FOUND")
    assert_problem(forbidden, 403, "RGP.RBAC.FORBIDDEN")
