"""The unread counts a post computes are kept for the next post in the thread (``unread_cache``, db migration
0002) and used again only while exact: every change of a count that is not a post voids them (contract 5.8,
6.5). The property test of tests/api/test_messages_unread.py runs random sequences through them; here each
kind of change once, with the cached rows themselves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID

import asyncpg
import pytest
from redis.asyncio import Redis

from tests.support.api import Api, Persona
from tests.support.conversations import add_participant, remove_participant
from tests.support.messages import events_after, open_room, post_root, reply, unlimited_api, unread_counts


@pytest.fixture
async def api(pool: asyncpg.Pool, redis: Redis, database_url: str, redis_url: str) -> AsyncIterator[Api]:
    async with unlimited_api(pool, database_url, redis_url) as running:
        yield running


async def last_unread(pool: asyncpg.Pool, conversation_id: str, user: Persona, root: str) -> int:
    """The count of the newest ``unread.update`` to ``user`` for thread ``root``."""
    counts = [
        e["envelope"]["payload"]["unread"]
        for e in await events_after(pool, conversation_id)
        if e["type"] == "unread.update"
        and e["audience"] == str(user.id)
        and e["envelope"]["payload"]["root_id"] == root
    ]
    return counts[-1]


async def cached(pool: asyncpg.Pool, root: str, user: Persona) -> int | None:
    value: int | None = await pool.fetchval(
        "SELECT unread FROM unread_cache WHERE root_id = $1 AND user_id = $2", UUID(root), user.id
    )
    return value


async def test_each_post_counts_one_more_from_the_cached_count(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    root = await post_root(api, room.alice, room.id)
    for expected in range(2, 6):
        await reply(api, room.alice, root)
        assert await last_unread(pool, room.id, room.bob, root) == expected
        assert await cached(pool, root, room.bob) == expected
    assert (await unread_counts(api, room.bob, room.id))[root] == 5


async def test_a_delete_or_restore_voids_the_cached_counts(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    root = await post_root(api, room.alice, room.id)
    doomed = await reply(api, room.alice, root)
    await reply(api, room.alice, root)

    assert (await api.post(f"/api/messages/{doomed}/delete", room.alice, json={})).status_code == 204
    await reply(api, room.alice, root)
    assert await last_unread(pool, room.id, room.bob, root) == 3

    assert (await api.post(f"/api/messages/{doomed}/restore", room.alice)).status_code == 204
    await reply(api, room.alice, root)
    assert await last_unread(pool, room.id, room.bob, root) == 5
    assert (await unread_counts(api, room.bob, room.id))[root] == 5


async def test_reading_or_rejoining_moves_the_bound_the_cached_count_was_made_for(
    api: Api, pool: asyncpg.Pool
) -> None:
    room = await open_room(api)
    erin = await api.persona("erin")
    await add_participant(api, room.alice, room.id, erin)
    root = await post_root(api, room.alice, room.id)
    await reply(api, room.alice, root)

    assert (await api.post(f"/api/threads/{root}/read", room.bob, json={})).status_code == 200
    await reply(api, room.alice, root)
    assert await last_unread(pool, room.id, room.bob, root) == 1

    await remove_participant(api, room.alice, room.id, erin)
    api.clock.advance(1)
    await add_participant(api, room.alice, room.id, erin)
    await reply(api, room.alice, root)
    assert await last_unread(pool, room.id, erin, root) == (await unread_counts(api, erin, room.id)).get(
        root, 0
    )
    assert await last_unread(pool, room.id, room.bob, root) == 2
