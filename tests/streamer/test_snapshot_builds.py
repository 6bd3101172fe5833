"""Snapshots of many conversations built at once (a reconnect storm after a restart): each connection still
gets its snapshot (contract 6.7), and the builds hold only a few Redis connections."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from tests.streamer.test_hub_subscribe import member_row
from threadline_shared.redis import create_redis
from threadline_streamer.connection import Connection
from threadline_streamer.snapshot import BUILDS_AT_ONCE, Snapshotter


async def test_snapshots_of_more_conversations_than_redis_connections_are_all_built(
    pool: asyncpg.Pool, redis_url: str
) -> None:
    client = create_redis(redis_url)  # the services' client: its pool holds at most 100 connections
    try:
        members = [await member_row(pool) for _ in range(150)]
        snapshotter = Snapshotter(pool, client)

        built = await asyncio.gather(
            *(snapshotter(Connection(conversation, user, uuid.uuid4(), 8)) for conversation, user in members)
        )

        for (_, user), snapshot in zip(members, built, strict=True):
            assert snapshot.startswith(b"event: presence.update\n")  # built, not skipped
            assert str(user).encode() in snapshot
        opened = client.connection_pool
        assert len(opened._available_connections) + len(opened._in_use_connections) <= BUILDS_AT_ONCE
    finally:
        await client.aclose()


async def test_a_connect_sharing_a_build_that_was_cancelled_builds_its_own(
    pool: asyncpg.Pool, redis_url: str
) -> None:
    """Connects arriving together share one build (the first one's). When that first connect is cancelled (a
    lean batch's time limit, a shutdown of its request), the others still get their snapshot instead of
    inheriting its cancellation."""
    client = create_redis(redis_url)
    try:
        conversation, user = await member_row(pool)
        snapshotter = Snapshotter(pool, client)
        for _ in range(BUILDS_AT_ONCE):  # every build slot busy: the first connect's build waits for one
            await snapshotter._builds.acquire()
        first = asyncio.ensure_future(snapshotter(Connection(conversation, user, uuid.uuid4(), 8)))
        await asyncio.sleep(0.01)
        second = asyncio.ensure_future(snapshotter(Connection(conversation, user, uuid.uuid4(), 8)))
        await asyncio.sleep(0.01)
        first.cancel()
        await asyncio.sleep(0.01)
        for _ in range(BUILDS_AT_ONCE):
            snapshotter._builds.release()

        snapshot = await asyncio.wait_for(second, 5)
        assert snapshot.startswith(b"event: presence.update\n") and str(user).encode() in snapshot
        assert first.cancelled()
    finally:
        await client.aclose()
