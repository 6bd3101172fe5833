"""The membership cache behind the presence fan-out: TTL, invalidation, and no stale refill."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from uuid import UUID

from threadline_presence.memberships import ConversationsCache

ALICE = UUID("00000000-0000-4000-8000-00000000a11c")
BOB = UUID("00000000-0000-4000-8000-000000000b0b")
PLANS = UUID("00000000-0000-4000-8000-0000000c0a01")
TRIPS = UUID("00000000-0000-4000-8000-0000000c0a02")


class Database:
    """The rows the loader reads, and how often it was asked."""

    def __init__(self) -> None:
        self.rows: dict[UUID, list[UUID]] = {ALICE: [PLANS], BOB: [PLANS, TRIPS]}
        self.loads: list[list[UUID]] = []
        self.gate: asyncio.Event | None = None

    async def load(self, user_ids: Sequence[UUID]) -> dict[UUID, list[UUID]]:
        self.loads.append(list(user_ids))
        snapshot = {user: list(self.rows.get(user, [])) for user in user_ids}
        if self.gate is not None:
            await self.gate.wait()
        return snapshot


class Ticker:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_entries_are_served_from_the_cache_until_the_ttl() -> None:
    database, ticker = Database(), Ticker()
    cache = ConversationsCache(database.load, ttl_seconds=30, monotonic=ticker)

    first = await cache.conversations_of([ALICE, BOB])
    database.rows[ALICE] = [PLANS, TRIPS]
    ticker.now = 29
    cached = await cache.conversations_of([ALICE])
    ticker.now = 31
    fresh = await cache.conversations_of([ALICE])

    assert first == {ALICE: [PLANS], BOB: [PLANS, TRIPS]}
    assert cached == {ALICE: [PLANS]}
    assert fresh == {ALICE: [PLANS, TRIPS]}
    assert database.loads == [[ALICE, BOB], [ALICE]]


async def test_only_missing_users_are_loaded() -> None:
    database = Database()
    cache = ConversationsCache(database.load, ttl_seconds=30)
    await cache.conversations_of([ALICE])

    answer = await cache.conversations_of([ALICE, BOB])

    assert answer == {ALICE: [PLANS], BOB: [PLANS, TRIPS]}
    assert database.loads == [[ALICE], [BOB]]


async def test_an_invalidated_user_is_read_again() -> None:
    database = Database()
    cache = ConversationsCache(database.load, ttl_seconds=30)
    await cache.conversations_of([ALICE, BOB])
    database.rows[ALICE] = []

    cache.invalidate([ALICE])

    assert ALICE not in cache
    assert BOB in cache
    assert await cache.conversations_of([ALICE]) == {ALICE: []}


async def test_a_read_that_overlaps_an_invalidation_is_not_kept() -> None:
    database = Database()
    database.gate = asyncio.Event()
    cache = ConversationsCache(database.load, ttl_seconds=30)

    reading = asyncio.create_task(cache.conversations_of([ALICE]))
    await asyncio.sleep(0)  # the read has taken its (soon stale) rows
    database.rows[ALICE] = [PLANS, TRIPS]
    cache.invalidate([ALICE])
    database.gate.set()
    stale = await asyncio.wait_for(reading, 5)
    database.gate = None

    assert stale == {ALICE: [PLANS]}
    assert ALICE not in cache
    assert await cache.conversations_of([ALICE]) == {ALICE: [PLANS, TRIPS]}


async def test_the_cache_stays_bounded() -> None:
    database = Database()
    cache = ConversationsCache(database.load, ttl_seconds=30, max_users=1)

    await cache.conversations_of([ALICE])
    await cache.conversations_of([BOB])

    assert BOB in cache
    assert ALICE not in cache
