"""The membership listener (LISTEN ``tl_events``): committed ``membership.changed`` events drop the named
users from the presence service's conversation cache; other events do not; a lost connection clears it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from tests.presence.conftest import join_announced
from tests.support.factories import create_conversation, create_user
from threadline_presence import repository
from threadline_presence.listener import MembershipListener
from threadline_presence.memberships import ConversationsCache
from threadline_shared.dto.events import (
    ThreadActivity,
    ThreadActivityEvent,
)
from threadline_shared.eventlog import LogEntry, append_events


@dataclass
class Listening:
    listener: MembershipListener
    cache: ConversationsCache


@pytest.fixture
async def listening(pool: asyncpg.Pool, database_url: str) -> AsyncIterator[Listening]:
    async def load(user_ids: Any) -> dict[UUID, list[UUID]]:
        return await repository.conversations_of(pool, user_ids)

    cache = ConversationsCache(load, ttl_seconds=3600)  # only the listener may make entries go away here
    listener = MembershipListener(database_url, pool, cache)
    task = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(listener.connected.wait(), 10)
        yield Listening(listener, cache)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)


async def until(condition: Callable[[], bool], timeout: float = 5) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


async def other_event(pool: asyncpg.Pool, conversation_id: UUID, root_id: UUID) -> None:
    event = ThreadActivityEvent(
        payload=ThreadActivity(root_id=root_id, last_activity_at="2025-03-08T14:30:00Z")
    )
    async with pool.acquire() as conn, conn.transaction():
        await append_events(conn, conversation_id, [LogEntry(event)])


async def test_a_new_membership_drops_the_user_and_the_conversations_members_from_the_cache(
    pool: asyncpg.Pool, listening: Listening
) -> None:
    """Everyone in the conversation: its creator's cached list may predate it (creation announces nothing)."""
    alice, bob, carol = [await create_user(pool, name) for name in ("alice", "bob", "carol")]
    await create_conversation(pool, alice)
    assert set(await listening.cache.conversations_of([alice, bob, carol])) == {alice, bob, carol}
    plans = await create_conversation(pool, alice)  # after alice's list was cached

    await join_announced(pool, plans, bob)
    await until(lambda: bob not in listening.cache and alice not in listening.cache)

    assert carol in listening.cache  # not in that conversation
    found = await listening.cache.conversations_of([alice, bob])
    assert plans in found[alice] and found[bob] == [plans]


async def test_other_events_leave_the_cache_alone(pool: asyncpg.Pool, listening: Listening) -> None:
    alice, bob, carol, dave = [await create_user(pool, name) for name in ("alice", "bob", "carol", "dave")]
    plans = await create_conversation(pool, alice)
    trips = await create_conversation(pool, dave)
    await listening.cache.conversations_of([alice, bob, carol])

    await other_event(pool, plans, UUID("0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80"))
    await join_announced(
        pool, trips, carol
    )  # notifications arrive in commit order: the first was handled before
    await until(lambda: carol not in listening.cache)

    assert alice in listening.cache
    assert bob in listening.cache


async def test_several_changes_in_a_row_are_all_seen(pool: asyncpg.Pool, listening: Listening) -> None:
    alice = await create_user(pool, "alice")
    others = [await create_user(pool, f"user{n}") for n in range(5)]
    plans = await create_conversation(pool, alice)
    await listening.cache.conversations_of(others)

    for user in others:
        await join_announced(pool, plans, user)
    await until(lambda: all(user not in listening.cache for user in others))

    assert all(
        conversations == [plans]
        for conversations in (await listening.cache.conversations_of(others)).values()
    )


async def test_a_lost_connection_clears_the_cache_and_reconnects(
    pool: asyncpg.Pool, listening: Listening
) -> None:
    alice = await create_user(pool, "alice")
    await create_conversation(pool, alice)
    await listening.cache.conversations_of([alice])
    listening.listener.connected.clear()

    await pool.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid() AND datname = current_database()"
    )
    await asyncio.wait_for(listening.listener.connected.wait(), 10)

    assert alice not in listening.cache
