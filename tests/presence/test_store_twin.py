"""The in-memory twin answers like the Redis store: random sequences of heartbeats, typing calls, posts,
sweeps and clock moves give the same results on both (a differential property test)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from threadline_shared.clock import FakeClock
from threadline_shared.dto.enums import PresenceStatus
from threadline_shared.presence.memory_store import MemoryPresenceStore
from threadline_shared.presence.redis_store import RedisPresenceStore
from threadline_shared.presence.store import PresenceStore, TypingKey

START = datetime(2025, 3, 8, 14, 30, tzinfo=UTC)
USERS = [UUID(f"00000000-0000-4000-8000-00000000000{n}") for n in range(3)]
CONVERSATIONS = [UUID(f"00000000-0000-4000-8000-0000000c0a0{n}") for n in range(2)]
ROOTS = [None, UUID("0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80")]

users, conversations, roots = st.sampled_from(USERS), st.sampled_from(CONVERSATIONS), st.sampled_from(ROOTS)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("heartbeat"), users, st.sampled_from([PresenceStatus.ONLINE, PresenceStatus.AWAY])),
        st.tuples(st.just("advance"), st.sampled_from([0.001, 0.5, 1, 5, 29, 59.999, 60, 61])),
        st.tuples(st.just("sweep_presence")),
        st.tuples(st.just("typing"), conversations, users, roots, st.integers(0, 30)),
        st.tuples(st.just("clear"), conversations, users),
        st.tuples(st.just("sweep_typing")),
        st.tuples(st.just("look"), conversations),
    ),
    max_size=40,
)


async def apply(store: PresenceStore, clock: FakeClock, operation: tuple[Any, ...]) -> Any:
    """One operation; its result in a form both stores must agree on."""
    match operation:
        case ("heartbeat", user, status):
            result = await store.heartbeat(user, status)
            return result.changed, result.update
        case ("advance", seconds):
            clock.advance(seconds)
            return None
        case ("sweep_presence",):
            return await store.expire_presence(await store.due_presence(100))
        case ("typing", conversation, user, root, seconds):
            return await store.set_typing(TypingKey(conversation, user, root), seconds)
        case ("clear", conversation, user):
            return await store.clear_typing(conversation, user)
        case ("sweep_typing",):
            return await store.expire_typing(await store.due_typing(100))
        case ("look", conversation):
            return await store.presence_of(USERS), await store.typing_in(conversation)
    raise AssertionError(operation)


async def run_both(redis_url: str, steps: list[tuple[Any, ...]]) -> None:
    redis = Redis.from_url(redis_url)
    try:
        await redis.flushdb()
        redis_clock, memory_clock = FakeClock(START), FakeClock(START)
        real = RedisPresenceStore(redis, timeout_seconds=60, clock=redis_clock)
        twin = MemoryPresenceStore(memory_clock, timeout_seconds=60)
        for step in steps:
            assert await apply(real, redis_clock, step) == await apply(twin, memory_clock, step), step
    finally:
        await redis.flushdb()
        await redis.aclose()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=operations)
def test_the_twin_answers_like_redis(redis_url: str, steps: list[tuple[Any, ...]]) -> None:
    asyncio.run(run_both(redis_url, steps))
