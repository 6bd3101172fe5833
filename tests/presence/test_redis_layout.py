"""The Redis layout of contract 7.5, the Redis clock, and Redis failures as 503 ``redis_unavailable``."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from uuid import UUID

import pytest
from redis.asyncio import Redis

from threadline_devstack.servers import free_port
from threadline_shared.clock import FakeClock
from threadline_shared.dto.enums import PresenceStatus
from threadline_shared.errors import RedisUnavailable
from threadline_shared.presence.redis_store import RedisPresenceStore
from threadline_shared.presence.store import TypingKey, to_ms

ALICE = UUID("00000000-0000-4000-8000-00000000a11c")
CONVERSATION = UUID("00000000-0000-4000-8000-0000000c0a01")
ROOT = UUID("0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80")
START = datetime(2025, 3, 8, 14, 30, tzinfo=UTC)


async def test_a_heartbeat_writes_the_presence_hash_and_the_deadline(redis: Redis) -> None:
    clock = FakeClock(START)
    await RedisPresenceStore(redis, timeout_seconds=60, clock=clock).heartbeat(ALICE, PresenceStatus.AWAY)

    assert await redis.hgetall(f"tl:presence:{ALICE}") == {
        b"status": b"away",
        b"last_seen_ms": str(to_ms(START)).encode(),
    }
    assert await redis.zscore("tl:presence:deadlines", str(ALICE)) == to_ms(START) + 60_000
    assert await redis.pttl(f"tl:presence:{ALICE}") == -1  # kept for good: last_seen_at outlives any TTL


async def test_a_heartbeat_takes_the_expiry_off_a_presence_hash_that_had_one(redis: Redis) -> None:
    """Hashes written before presence was kept for good carried a 30-day TTL: after which the user was
    shown as never seen (7.4). The next heartbeat makes the hash permanent."""
    await redis.hset(f"tl:presence:{ALICE}", mapping={"status": "offline", "last_seen_ms": to_ms(START)})
    await redis.pexpire(f"tl:presence:{ALICE}", 30 * 24 * 3600 * 1000)

    await RedisPresenceStore(redis, clock=FakeClock(START)).heartbeat(ALICE, PresenceStatus.ONLINE)

    assert await redis.pttl(f"tl:presence:{ALICE}") == -1


async def test_going_offline_takes_the_expiry_off_a_presence_hash_that_had_one(redis: Redis) -> None:
    """A user already online when presence began keeping hashes for good: going offline makes it permanent
    too (an earlier replica's heartbeat had set the TTL)."""
    clock = FakeClock(START)
    store = RedisPresenceStore(redis, timeout_seconds=60, clock=clock)
    await store.heartbeat(ALICE, PresenceStatus.ONLINE)
    await redis.pexpire(f"tl:presence:{ALICE}", 30 * 24 * 3600 * 1000)
    clock.advance(61)

    [offline] = await store.expire_presence(await store.due_presence(10))

    assert offline.status is PresenceStatus.OFFLINE
    assert await redis.pttl(f"tl:presence:{ALICE}") == -1


async def test_typing_writes_the_conversation_hash_and_the_deadline(redis: Redis) -> None:
    clock = FakeClock(START)
    store = RedisPresenceStore(redis, clock=clock)
    await store.set_typing(TypingKey(CONVERSATION, ALICE, ROOT), 5)
    await store.set_typing(TypingKey(CONVERSATION, ALICE, None), 7)

    expiry = to_ms(START) + 5000
    assert await redis.hgetall(f"tl:typing:{CONVERSATION}") == {
        f"{ALICE}/{ROOT}".encode(): str(expiry).encode(),
        f"{ALICE}/-".encode(): str(expiry + 2000).encode(),
    }
    assert await redis.zrange("tl:typing:deadlines", 0, -1, withscores=True) == [
        (f"{CONVERSATION}/{ALICE}/{ROOT}".encode(), expiry),
        (f"{CONVERSATION}/{ALICE}/-".encode(), expiry + 2000),
    ]
    assert 7000 < await redis.pttl(f"tl:typing:{CONVERSATION}") <= 7000 + 60_000


async def test_without_a_clock_the_redis_server_clock_decides(redis: Redis) -> None:
    before = time.time()
    result = await RedisPresenceStore(redis).heartbeat(ALICE, PresenceStatus.ONLINE)
    after = time.time()

    assert result.update.last_seen_at is not None
    assert before - 1 <= result.update.last_seen_at.timestamp() <= after + 1


async def test_an_unreachable_redis_is_redis_unavailable() -> None:
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    store = RedisPresenceStore(dead)
    try:
        with pytest.raises(RedisUnavailable):
            await store.heartbeat(ALICE, PresenceStatus.ONLINE)
        with pytest.raises(RedisUnavailable):
            await store.typing_in(CONVERSATION)
        with pytest.raises(RedisUnavailable):
            await store.expire_presence([ALICE])
    finally:
        await dead.aclose()
