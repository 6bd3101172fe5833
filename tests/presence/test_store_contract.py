"""The presence store contract (7.1-7.5), one scenario set run against the Redis store and its in-memory
twin, both on a fake clock (the Redis scripts then take ``now`` from the test instead of ``TIME``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from uuid import UUID

import pytest
from redis.asyncio import Redis

from threadline_shared.clock import FakeClock
from threadline_shared.dto.enums import PresenceStatus
from threadline_shared.presence.memory_store import MemoryPresenceStore
from threadline_shared.presence.redis_store import RedisPresenceStore
from threadline_shared.presence.store import PresenceStore, TypingKey

ONLINE, AWAY, OFFLINE = PresenceStatus.ONLINE, PresenceStatus.AWAY, PresenceStatus.OFFLINE
TIMEOUT = 60
START = datetime(2025, 3, 8, 14, 30, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture(params=["redis", "memory"])
async def store(
    request: pytest.FixtureRequest, clock: FakeClock, redis_url: str
) -> AsyncIterator[PresenceStore]:
    if request.param == "memory":
        yield MemoryPresenceStore(clock, timeout_seconds=TIMEOUT)
        return
    client = Redis.from_url(redis_url)
    try:
        yield RedisPresenceStore(client, timeout_seconds=TIMEOUT, clock=clock)
    finally:
        await client.flushdb()
        await client.aclose()


@pytest.fixture
def alice() -> UUID:
    return UUID("00000000-0000-4000-8000-00000000a11c")


@pytest.fixture
def bob() -> UUID:
    return UUID("00000000-0000-4000-8000-000000000b0b")


async def test_a_user_never_seen_is_offline_without_last_seen(store: PresenceStore, alice: UUID) -> None:
    [presence] = await store.presence_of([alice])

    assert presence.status is OFFLINE
    assert presence.last_seen_at is None


async def test_the_first_heartbeat_is_a_transition_to_its_status(store: PresenceStore, alice: UUID) -> None:
    result = await store.heartbeat(alice, ONLINE)

    assert result.changed
    assert result.update.status is ONLINE
    assert result.update.last_seen_at == START
    assert await store.presence_of([alice]) == [result.update]


async def test_a_first_heartbeat_may_be_away(store: PresenceStore, alice: UUID) -> None:
    result = await store.heartbeat(alice, AWAY)

    assert result.changed
    assert result.update.status is AWAY


async def test_a_heartbeat_that_keeps_the_status_is_no_transition_but_moves_last_seen(
    store: PresenceStore, clock: FakeClock, alice: UUID
) -> None:
    await store.heartbeat(alice, ONLINE)
    clock.advance(25)
    result = await store.heartbeat(alice, ONLINE)

    assert not result.changed
    [presence] = await store.presence_of([alice])
    assert presence.last_seen_at == clock.now()


async def test_online_and_away_switch_both_ways(store: PresenceStore, clock: FakeClock, alice: UUID) -> None:
    await store.heartbeat(alice, ONLINE)
    clock.advance(1)
    to_away = await store.heartbeat(alice, AWAY)
    clock.advance(1)
    still_away = await store.heartbeat(alice, AWAY)
    clock.advance(1)
    back = await store.heartbeat(alice, ONLINE)

    assert (to_away.changed, still_away.changed, back.changed) == (True, False, True)
    assert (await store.presence_of([alice]))[0].status is ONLINE


async def test_nobody_is_due_before_the_timeout(store: PresenceStore, clock: FakeClock, alice: UUID) -> None:
    await store.heartbeat(alice, ONLINE)
    clock.advance(TIMEOUT - 0.001)

    assert await store.due_presence(100) == []
    assert await store.expire_presence([alice]) == []
    assert (await store.presence_of([alice]))[0].status is ONLINE


async def test_offline_after_the_timeout_keeps_the_last_heartbeat_time(
    store: PresenceStore, clock: FakeClock, alice: UUID
) -> None:
    await store.heartbeat(alice, AWAY)
    clock.advance(TIMEOUT)

    assert await store.due_presence(100) == [alice]
    [offline] = await store.expire_presence([alice])
    assert offline.status is OFFLINE
    assert offline.last_seen_at == START
    assert await store.presence_of([alice]) == [offline]


async def test_an_expiry_is_made_once(store: PresenceStore, clock: FakeClock, alice: UUID) -> None:
    await store.heartbeat(alice, ONLINE)
    clock.advance(TIMEOUT + 5)

    first = await store.expire_presence([alice])
    second = await store.expire_presence([alice])

    assert len(first) == 1
    assert second == []
    assert await store.due_presence(100) == []


async def test_heartbeats_resumed_within_the_timeout_never_flap(
    store: PresenceStore, clock: FakeClock, alice: UUID
) -> None:
    await store.heartbeat(alice, ONLINE)
    clock.advance(50)  # a reconnect, well past the usual 25 s interval
    resumed = await store.heartbeat(alice, ONLINE)
    clock.advance(50)

    assert not resumed.changed
    assert await store.due_presence(100) == []
    assert await store.expire_presence([alice]) == []


async def test_a_heartbeat_after_the_deadline_but_before_the_sweep_keeps_the_user_online(
    store: PresenceStore, clock: FakeClock, alice: UUID
) -> None:
    await store.heartbeat(alice, ONLINE)
    clock.advance(TIMEOUT + 1)
    late = await store.heartbeat(alice, ONLINE)

    assert not late.changed
    assert await store.expire_presence([alice]) == []
    assert (await store.presence_of([alice]))[0].status is ONLINE


async def test_a_heartbeat_after_going_offline_is_a_transition(
    store: PresenceStore, clock: FakeClock, alice: UUID
) -> None:
    await store.heartbeat(alice, ONLINE)
    clock.advance(TIMEOUT)
    await store.expire_presence(await store.due_presence(100))
    clock.advance(10)
    back = await store.heartbeat(alice, ONLINE)

    assert back.changed
    assert back.update.last_seen_at == clock.now()


async def test_due_users_come_by_deadline(
    store: PresenceStore, clock: FakeClock, alice: UUID, bob: UUID
) -> None:
    await store.heartbeat(bob, ONLINE)
    clock.advance(1)
    await store.heartbeat(alice, ONLINE)
    clock.advance(TIMEOUT)

    assert await store.due_presence(100) == [bob, alice]
    assert await store.due_presence(1) == [bob]


async def test_presence_of_keeps_the_given_order(store: PresenceStore, alice: UUID, bob: UUID) -> None:
    await store.heartbeat(alice, AWAY)

    answer = await store.presence_of([bob, alice])

    assert [(p.user_id, p.status) for p in answer] == [(bob, OFFLINE), (alice, AWAY)]


async def test_concurrent_heartbeats_make_one_transition(store: PresenceStore, alice: UUID) -> None:
    results = await asyncio.gather(*(store.heartbeat(alice, ONLINE) for _ in range(20)))

    assert sum(result.changed for result in results) == 1


async def test_concurrent_sweeps_make_each_expiry_once(
    store: PresenceStore, clock: FakeClock, alice: UUID, bob: UUID
) -> None:
    await store.heartbeat(alice, ONLINE)
    await store.heartbeat(bob, AWAY)
    clock.advance(TIMEOUT)

    rounds = await asyncio.gather(*(store.expire_presence([alice, bob]) for _ in range(10)))

    made = [update.user_id for updates in rounds for update in updates]
    assert sorted(made) == sorted([alice, bob])


# ---- typing -----------------------------------------------------------------------------------------------

CONVERSATION = UUID("00000000-0000-4000-8000-0000000c0a01")
OTHER_CONVERSATION = UUID("00000000-0000-4000-8000-0000000c0a02")
ROOT = UUID("0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80")


def key(user: UUID, root: UUID | None = None, conversation: UUID = CONVERSATION) -> TypingKey:
    return TypingKey(conversation, user, root)


async def test_typing_starts_with_an_expiry(store: PresenceStore, clock: FakeClock, alice: UUID) -> None:
    update, existed = await store.set_typing(key(alice, ROOT), 5)

    assert not existed
    assert (update.conversation_id, update.root_id, update.user_id) == (CONVERSATION, ROOT, alice)
    assert (update.expires_at - START).total_seconds() == 5
    assert await store.typing_in(CONVERSATION) == [update]
    assert await store.typing_in(OTHER_CONVERSATION) == []


async def test_typing_without_root_is_its_own_entry(store: PresenceStore, alice: UUID) -> None:
    new_root, _ = await store.set_typing(key(alice), 5)
    reply, _ = await store.set_typing(key(alice, ROOT), 6)

    assert new_root.root_id is None
    assert await store.typing_in(CONVERSATION) == [new_root, reply]


async def test_a_refresh_replaces_the_expiry(store: PresenceStore, clock: FakeClock, alice: UUID) -> None:
    await store.set_typing(key(alice), 5)
    clock.advance(4)
    refreshed, existed = await store.set_typing(key(alice), 3)
    clock.advance(2)

    assert existed
    assert (refreshed.expires_at - START).total_seconds() == 7
    assert await store.due_typing(100) == []
    assert await store.typing_in(CONVERSATION) == [refreshed]


async def test_seconds_zero_removes_the_entry_and_stops_now(
    store: PresenceStore, clock: FakeClock, alice: UUID
) -> None:
    await store.set_typing(key(alice), 5)
    clock.advance(1)
    stop, existed = await store.set_typing(key(alice), 0)

    assert existed
    assert stop.expires_at == clock.now()
    assert await store.typing_in(CONVERSATION) == []
    assert await store.due_typing(100) == []


async def test_seconds_zero_without_an_entry_still_stops(store: PresenceStore, alice: UUID) -> None:
    stop, existed = await store.set_typing(key(alice, ROOT), 0)

    assert not existed
    assert stop.expires_at == START
    assert stop.root_id == ROOT


async def test_an_expired_entry_is_removed_once_with_the_removal_time(
    store: PresenceStore, clock: FakeClock, alice: UUID
) -> None:
    await store.set_typing(key(alice, ROOT), 5)
    clock.advance(4.999)
    assert await store.due_typing(100) == []

    clock.advance(2.001)
    due = await store.due_typing(100)
    assert due == [key(alice, ROOT)]
    assert await store.typing_in(CONVERSATION) == []  # expired entries are not live even before the sweep
    [stop] = await store.expire_typing(due)
    assert stop.expires_at == clock.now()
    assert (stop.user_id, stop.root_id) == (alice, ROOT)
    assert await store.expire_typing(due) == []
    assert await store.due_typing(100) == []


async def test_a_refreshed_entry_is_not_expired_by_a_stale_candidate_list(
    store: PresenceStore, clock: FakeClock, alice: UUID
) -> None:
    await store.set_typing(key(alice), 5)
    clock.advance(5)
    due = await store.due_typing(100)
    await store.set_typing(key(alice), 5)  # refreshed between the sweeper's two steps

    assert await store.expire_typing(due) == []
    assert len(await store.typing_in(CONVERSATION)) == 1


async def test_clearing_after_a_post_removes_only_the_authors_entries_in_that_conversation(
    store: PresenceStore, clock: FakeClock, alice: UUID, bob: UUID
) -> None:
    await store.set_typing(key(alice), 5)
    await store.set_typing(key(alice, ROOT), 5)
    await store.set_typing(key(alice, conversation=OTHER_CONVERSATION), 5)
    bobs, _ = await store.set_typing(key(bob), 5)
    clock.advance(1)

    stops = await store.clear_typing(CONVERSATION, alice)

    assert [(s.root_id, s.expires_at) for s in stops] == [(None, clock.now()), (ROOT, clock.now())]
    assert await store.typing_in(CONVERSATION) == [bobs]
    assert len(await store.typing_in(OTHER_CONVERSATION)) == 1
    assert await store.clear_typing(CONVERSATION, alice) == []


async def test_cleared_entries_do_not_expire_again(
    store: PresenceStore, clock: FakeClock, alice: UUID
) -> None:
    await store.set_typing(key(alice), 5)
    await store.clear_typing(CONVERSATION, alice)
    clock.advance(10)

    assert await store.due_typing(100) == []


async def test_live_typing_is_listed_by_expiry(store: PresenceStore, alice: UUID, bob: UUID) -> None:
    late, _ = await store.set_typing(key(alice), 9)
    early, _ = await store.set_typing(key(bob, ROOT), 2)
    middle, _ = await store.set_typing(key(bob), 5)

    assert await store.typing_in(CONVERSATION) == [early, middle, late]


async def test_concurrent_typing_sweeps_stop_each_entry_once(
    store: PresenceStore, clock: FakeClock, alice: UUID, bob: UUID
) -> None:
    await store.set_typing(key(alice), 1)
    await store.set_typing(key(bob, ROOT), 1)
    clock.advance(2)
    due = await store.due_typing(100)

    rounds = await asyncio.gather(*(store.expire_typing(due) for _ in range(10)))

    assert sorted(str(stop.user_id) for stops in rounds for stop in stops) == sorted([str(alice), str(bob)])


def test_typing_keys_follow_the_redis_layout(alice: UUID) -> None:
    entry = key(alice, ROOT)
    assert entry.field == f"{alice}/{ROOT}"
    assert entry.member == f"{CONVERSATION}/{alice}/{ROOT}"
    assert key(alice).field == f"{alice}/-"
    assert TypingKey.from_member(key(alice).member) == key(alice)
    assert TypingKey.from_member(entry.member) == entry


async def test_many_heartbeats_at_once_are_applied_in_order(
    store: PresenceStore, clock: FakeClock, alice: UUID, bob: UUID
) -> None:
    results = await store.heartbeat_many([(alice, ONLINE), (bob, AWAY), (alice, ONLINE), (alice, AWAY)])

    assert [(r.update.user_id, r.update.status, r.changed) for r in results] == [
        (alice, ONLINE, True),
        (bob, AWAY, True),
        (alice, ONLINE, False),
        (alice, AWAY, True),
    ]
    assert [p.status for p in await store.presence_of([alice, bob])] == [AWAY, AWAY]
    assert all(r.update.last_seen_at == START for r in results)
