"""Typing cleared after a post (contract 5.3, 7.3), as the api calls it: the author's entries in that
conversation are removed and one stop per entry is published; Redis errors never reach the caller."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest
from redis.asyncio import Redis

from tests.presence.support import subscribed, typing_events
from threadline_devstack.servers import free_port
from threadline_shared.clock import FakeClock
from threadline_shared.dto.base import format_timestamp
from threadline_shared.presence.posting import clear_typing_after_post, clear_typing_after_posts
from threadline_shared.presence.redis_store import RedisPresenceStore
from threadline_shared.presence.store import TypingKey

START = datetime(2025, 3, 8, 14, 30, tzinfo=UTC)
ALICE = UUID("00000000-0000-4000-8000-00000000a11c")
BOB = UUID("00000000-0000-4000-8000-000000000b0b")
PLANS = UUID("00000000-0000-4000-8000-0000000c0a01")
TRIPS = UUID("00000000-0000-4000-8000-0000000c0a02")
ROOT = UUID("0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80")


async def test_a_post_stops_each_typing_entry_of_the_author_in_that_conversation(
    redis: Redis, redis_url: str
) -> None:
    clock = FakeClock(START)
    store = RedisPresenceStore(redis, clock=clock)
    await store.set_typing(TypingKey(PLANS, ALICE, None), 10)
    await store.set_typing(TypingKey(PLANS, ALICE, ROOT), 10)
    await store.set_typing(TypingKey(TRIPS, ALICE, None), 10)
    await store.set_typing(TypingKey(PLANS, BOB, None), 10)
    clock.advance(2)

    async with subscribed(redis_url, PLANS, TRIPS) as subscriber:
        stops = await clear_typing_after_post(redis, PLANS, ALICE, clock=clock)
        received = await subscriber.wait_for(2)
        received = await subscriber.quiet(0.1)

    stopped_at = format_timestamp(clock.now())
    assert typing_events(received) == [
        (PLANS, {"conversation_id": str(PLANS), "user_id": str(ALICE), "expires_at": stopped_at}),
        (
            PLANS,
            {
                "conversation_id": str(PLANS),
                "root_id": str(ROOT),
                "user_id": str(ALICE),
                "expires_at": stopped_at,
            },
        ),
    ]
    assert [stop.root_id for stop in stops] == [None, ROOT]
    assert [(t.conversation_id, t.user_id) for t in await store.typing_in(PLANS)] == [(PLANS, BOB)]
    assert len(await store.typing_in(TRIPS)) == 1


async def test_a_post_without_typing_publishes_nothing(redis: Redis, redis_url: str) -> None:
    async with subscribed(redis_url, PLANS) as subscriber:
        stops = await clear_typing_after_post(redis, PLANS, ALICE)
        received = await subscriber.quiet(0.1)

    assert stops == []
    assert received == []


async def test_cleared_entries_are_not_stopped_again_by_the_sweeper(redis: Redis) -> None:
    clock = FakeClock(START)
    store = RedisPresenceStore(redis, clock=clock)
    await store.set_typing(TypingKey(PLANS, ALICE, ROOT), 3)
    await clear_typing_after_post(redis, PLANS, ALICE, clock=clock)
    clock.advance(10)

    assert await store.due_typing(100) == []


async def test_with_redis_down_a_post_still_succeeds(caplog: pytest.LogCaptureFixture) -> None:
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    try:
        assert await clear_typing_after_post(dead, PLANS, ALICE) == []
    finally:
        await dead.aclose()

    assert "typing not cleared after a post" in caplog.text


async def test_a_batch_of_posts_stops_each_authors_entries_in_their_own_conversation(redis: Redis) -> None:
    """The api's lean path clears the typing of a whole batch of posts in one script call."""
    clock = FakeClock(START)
    store = RedisPresenceStore(redis, clock=clock)
    await store.set_typing(TypingKey(PLANS, ALICE, None), 10)
    await store.set_typing(TypingKey(PLANS, ALICE, ROOT), 10)
    await store.set_typing(TypingKey(PLANS, BOB, None), 10)
    await store.set_typing(TypingKey(TRIPS, BOB, ROOT), 10)
    await store.set_typing(TypingKey(TRIPS, ALICE, None), 10)

    stops = await clear_typing_after_posts(redis, [(PLANS, ALICE), (TRIPS, BOB), (PLANS, ALICE)], clock=clock)

    assert [(s.conversation_id, s.user_id, s.root_id) for s in stops] == [
        (PLANS, ALICE, None),
        (PLANS, ALICE, ROOT),
        (TRIPS, BOB, ROOT),
    ]
    assert [(t.user_id, t.root_id) for t in await store.typing_in(PLANS)] == [(BOB, None)]
    assert [(t.user_id, t.root_id) for t in await store.typing_in(TRIPS)] == [(ALICE, None)]
    assert await store.due_typing(100) == []
    clock.advance(20)
    assert {(k.conversation_id, k.user_id) for k in await store.due_typing(100)} == {
        (PLANS, BOB),
        (TRIPS, ALICE),
    }
