"""Durable events of the message actions (contract 5.3, 5.6, 5.8, 6.3-6.5): the exact events, in order, with
consecutive sequence numbers, written in the action's transaction; gapless and commit-ordered under load."""

from __future__ import annotations

import asyncio
import itertools
import random
import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from tests.support.api import Api, Persona, running_api
from tests.support.conversations import add_participant, remove_participant
from tests.support.messages import (
    Room,
    events_after,
    last_seq,
    open_room,
    post_root,
    reply,
    thread_list,
    unlimited_api,
    unread_counts,
    view,
)


@pytest.fixture
async def api(pool: asyncpg.Pool, redis: Redis, database_url: str, redis_url: str) -> AsyncIterator[Api]:
    """Some tests post fifty messages at once: the api starts with the posting limit raised."""
    async with unlimited_api(pool, database_url, redis_url) as running:
        yield running


def event(
    type_: str, payload: dict[str, Any], audience: Persona | None = None
) -> tuple[str, str | None, Any]:
    return type_, str(audience.id) if audience else None, {"type": type_, "payload": payload}


def as_tuples(events: list[dict[str, Any]]) -> list[tuple[str, str | None, Any]]:
    return [(e["type"], e["audience"], e["envelope"]) for e in events]


async def events_since(pool: asyncpg.Pool, conversation_id: str, seq: int) -> list[dict[str, Any]]:
    """The events after ``seq``, checking they are numbered consecutively from ``seq + 1``."""
    events = await events_after(pool, conversation_id, seq)
    assert [e["seq"] for e in events] == list(range(seq + 1, seq + 1 + len(events)))
    assert await last_seq(pool, conversation_id) == seq + len(events)
    return events


def by_id(*users: Persona) -> list[Persona]:
    return sorted(users, key=lambda user: user.id)


async def test_a_root_post_writes_the_thread_the_message_its_activity_and_unread_counts(
    api: Api, pool: asyncpg.Pool
) -> None:
    room = await open_room(api)
    start = await last_seq(pool, room.id)

    root = await post_root(api, room.bob, room.id, "  hello there  ")

    message = await view(api, room.bob, root, root)
    (summary,) = (await thread_list(api, room.bob, room.id))["threads"]
    assert summary["message_count"] == 1 and summary["root_excerpt"] == "hello there"
    unread = {"root_id": root, "unread": 1}
    assert as_tuples(await events_since(pool, room.id, start)) == [
        event("thread.new", {"conversation_id": room.id, "root_id": root, "summary": summary}),
        event("message.created", message),
        event("thread.activity", {"root_id": root, "last_activity_at": message["created_at"]}),
        *(event("unread.update", unread, user) for user in by_id(room.alice, room.carol)),
    ]


async def test_a_reply_writes_the_message_its_activity_and_unread_counts(
    api: Api, pool: asyncpg.Pool
) -> None:
    room = await open_room(api)
    root = await post_root(api, room.bob, room.id)
    start = await last_seq(pool, room.id)

    child = await reply(api, room.alice, root)

    message = await view(api, room.bob, root, child)
    counts = {room.bob.username: 1, room.carol.username: 2}
    assert as_tuples(await events_since(pool, room.id, start)) == [
        event("message.created", message),
        event("thread.activity", {"root_id": root, "last_activity_at": message["created_at"]}),
        *(
            event("unread.update", {"root_id": root, "unread": counts[user.username]}, user)
            for user in by_id(room.bob, room.carol)
        ),
    ]


async def test_unread_updates_carry_absolute_counts_for_current_participants_only(
    api: Api, pool: asyncpg.Pool
) -> None:
    room = await open_room(api)
    root = await post_root(api, room.alice, room.id)
    await reply(api, room.alice, root)
    await remove_participant(api, room.alice, room.id, room.carol)
    start = await last_seq(pool, room.id)

    await reply(api, room.alice, root)

    updates = [e for e in await events_since(pool, room.id, start) if e["type"] == "unread.update"]
    assert [(e["audience"], e["envelope"]["payload"]) for e in updates] == [
        (str(room.bob.id), {"root_id": root, "unread": 3})
    ]


async def test_mark_read_writes_one_unread_update_for_the_caller(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    root = await post_root(api, room.alice, room.id)
    latest = await reply(api, room.alice, root)
    start = await last_seq(pool, room.id)

    assert (
        await api.post(f"/api/threads/{root}/read", room.carol, json={"message_id": root})
    ).status_code == 200
    assert (
        await api.post(f"/api/threads/{root}/read", room.bob, json={"message_id": latest})
    ).status_code == 200

    assert as_tuples(await events_since(pool, room.id, start)) == [
        event("unread.update", {"root_id": root, "unread": 1}, room.carol),
        event("unread.update", {"root_id": root, "unread": 0}, room.bob),
    ]


async def test_edit_delete_and_restore_each_write_the_updated_message(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    root = await post_root(api, room.bob, room.id)
    views = []
    start = await last_seq(pool, room.id)

    for action, user, body in (
        ("edit", room.bob, {"content": "edited"}),
        ("delete", room.bob, {}),
        ("restore", room.alice, {}),
    ):
        assert (await api.post(f"/api/messages/{root}/{action}", user, json=body)).status_code == 204
        views.append(await view(api, room.bob, root, root))

    assert as_tuples(await events_since(pool, room.id, start)) == [event("message.updated", v) for v in views]
    assert views[1]["content"] == "" and "deleted_at" in views[1] and views[2]["content"] == "edited"


async def test_no_op_deletes_and_restores_write_nothing(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    live = await post_root(api, room.bob, room.id)
    gone = await post_root(api, room.bob, room.id)
    assert (await api.post(f"/api/messages/{gone}/delete", room.bob)).status_code == 204
    start = await last_seq(pool, room.id)

    assert (await api.post(f"/api/messages/{live}/restore", room.alice)).status_code == 204
    assert (await api.post(f"/api/messages/{gone}/delete", room.alice)).status_code == 204

    assert await events_since(pool, room.id, start) == []


async def test_refused_actions_write_nothing(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    root = await post_root(api, room.bob, room.id)
    assert (await api.post(f"/api/messages/{root}/delete", room.bob)).status_code == 204
    start = await last_seq(pool, room.id)

    refused = [
        await api.post(f"/api/threads/{room.id}/root", room.carol, json={"content": "viewer"}),
        await api.post(f"/api/messages/{root}/edit", room.bob, json={"content": "deleted"}),
        await api.post(f"/api/messages/{root}/restore", room.bob),
        await api.post(f"/api/threads/{root}/read", room.bob, json={"message_id": "nope"}),
        await api.post(f"/api/messages/{root}/reply", room.dave, json={"content": "outsider"}),
    ]

    assert [r.status_code for r in refused] == [403, 409, 403, 422, 403]
    assert await events_since(pool, room.id, start) == []


async def test_unread_fan_out_is_skipped_above_the_participant_cap(
    pool: asyncpg.Pool, redis: Redis, database_url: str, redis_url: str
) -> None:
    async with running_api(database_url, redis_url, unread_fanout_max_participants=2) as api:
        room = await open_room(api)
        start = await last_seq(pool, room.id)

        root = await post_root(api, room.bob, room.id)

        types = [e["type"] for e in await events_since(pool, room.id, start)]
        assert types == ["thread.new", "message.created", "thread.activity"]
        assert await unread_counts(api, room.alice, room.id) == {root: 1}


async def test_posting_rings_the_doorbell_with_the_top_sequence_number(
    api: Api, pool: asyncpg.Pool, database_url: str
) -> None:
    room = await open_room(api)
    rung: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(database_url)
    await listener.add_listener("tl_events", lambda *args: rung.put_nowait(str(args[-1])))
    try:
        await post_root(api, room.bob, room.id)

        assert await asyncio.wait_for(rung.get(), 5) == f"{room.id}:{await last_seq(pool, room.id)}"
    finally:
        await listener.close()


async def post_concurrently(api: Api, pool: asyncpg.Pool, room: Room, erin: Persona, n: int) -> int:
    """``n`` posts at once by three writers, roots and replies mixed; the sequence number before them."""
    roots = [await post_root(api, room.alice, room.id) for _ in range(3)]
    start = await last_seq(pool, room.id)
    rng = random.Random(7)
    writers = (room.alice, room.bob, erin)

    async def one(n: int) -> None:
        writer = writers[n % 3]
        if n % 4 == 0:
            await post_root(api, writer, room.id, f"root {n}")
        else:
            await reply(api, writer, rng.choice(roots), f"reply {n}")

    await asyncio.gather(*(one(n) for n in range(n)))
    return start


async def test_concurrent_posts_leave_a_gapless_commit_ordered_sequence(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    erin = await api.persona("erin")
    await add_participant(api, room.alice, room.id, erin)

    start = await post_concurrently(api, pool, room, erin, 50)

    events = await events_since(pool, room.id, start)
    assert sum(e["type"] == "message.created" for e in events) == 50
    assert all(a["created_at"] <= b["created_at"] for a, b in itertools.pairwise(events))
    # Each post's events are contiguous: [thread.new], message.created, thread.activity, 3 unread.update.
    types = [e["type"] for e in events]
    letters = {"thread.new": "N", "message.created": "C", "thread.activity": "A", "unread.update": "u"}
    assert re.fullmatch(r"(N?CAuuu)+", "".join(letters[t] for t in types))


async def test_after_concurrent_posts_the_last_unread_update_is_the_current_count(
    api: Api, pool: asyncpg.Pool
) -> None:
    room = await open_room(api)
    erin = await api.persona("erin")
    await add_participant(api, room.alice, room.id, erin)

    await post_concurrently(api, pool, room, erin, 50)

    for user in (room.alice, room.bob, room.carol, erin):
        # A user's own post moves their watermark without an event to them (5.8, 6.5): skip those threads.
        posted_in = {
            str(row["root_id"])
            for row in await pool.fetch(
                "SELECT DISTINCT root_id FROM messages WHERE author_user_id = $1", user.id
            )
        }
        latest: dict[str, int] = {}
        for e in await events_after(pool, room.id):
            if e["type"] == "unread.update" and e["audience"] == str(user.id):
                latest[e["envelope"]["payload"]["root_id"]] = e["envelope"]["payload"]["unread"]
        fresh = await unread_counts(api, user, room.id)
        assert latest.keys() - posted_in, user.username
        for root in latest.keys() - posted_in:
            assert fresh.get(root, 0) == latest[root], user.username
