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
