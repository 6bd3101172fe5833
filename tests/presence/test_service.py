"""The presence state machine and typing (7.1-7.3) through PresenceService, on the in-memory store with a
fake clock: which events are published, to which conversations, and how often."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from tests.presence.support import FixedMemberships, RecordingPublisher
from threadline_presence.service import PresenceService
from threadline_shared.clock import FakeClock
from threadline_shared.dto.base import format_timestamp
from threadline_shared.dto.enums import PresenceStatus
from threadline_shared.errors import DatabaseUnavailable
from threadline_shared.presence.memory_store import MemoryPresenceStore
from threadline_shared.presence.store import TypingKey

ONLINE, AWAY = PresenceStatus.ONLINE, PresenceStatus.AWAY
START = datetime(2025, 3, 8, 14, 30, tzinfo=UTC)
ALICE = UUID("00000000-0000-4000-8000-00000000a11c")
BOB = UUID("00000000-0000-4000-8000-000000000b0b")
PLANS = UUID("00000000-0000-4000-8000-0000000c0a01")
TRIPS = UUID("00000000-0000-4000-8000-0000000c0a02")
ROOT = UUID("0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80")


class World:
    def __init__(self) -> None:
        self.clock = FakeClock(START)
        self.publisher = RecordingPublisher()
        self.memberships = FixedMemberships({ALICE: [PLANS, TRIPS], BOB: [PLANS]})
        self.store = MemoryPresenceStore(self.clock, timeout_seconds=60)
        self.service = PresenceService(self.store, self.publisher, self.memberships, typing_max_seconds=30)

    def presence(self, status: str, last_seen: datetime, user: UUID = ALICE) -> dict[str, Any]:
        return {
            "type": "presence.update",
            "payload": {"user_id": str(user), "status": status, "last_seen_at": format_timestamp(last_seen)},
        }

    def typing(self, expires_at: datetime, root: UUID | None = None, user: UUID = ALICE) -> dict[str, Any]:
        payload = {
            "conversation_id": str(PLANS),
            "user_id": str(user),
            "expires_at": format_timestamp(expires_at),
        }
        if root is not None:
            payload["root_id"] = str(root)
        return {"type": "typing.update", "payload": payload}


@pytest.fixture
def world() -> World:
    return World()


async def test_coming_online_is_published_once_in_every_conversation_of_the_user(world: World) -> None:
    await world.service.heartbeat(ALICE, ONLINE)

    online = world.presence("online", START)
    assert world.publisher.take() == [(PLANS, online), (TRIPS, online)]


async def test_heartbeats_that_keep_the_status_publish_nothing(world: World) -> None:
    await world.service.heartbeat(ALICE, ONLINE)
    world.publisher.take()
    for _ in range(5):
        world.clock.advance(25)
        await world.service.heartbeat(ALICE, ONLINE)

    assert world.publisher.take() == []


async def test_going_away_and_back_publishes_each_transition_once(world: World) -> None:
    await world.service.heartbeat(BOB, ONLINE)
    world.clock.advance(10)
    await world.service.heartbeat(BOB, AWAY)
    await world.service.heartbeat(BOB, AWAY)
    world.clock.advance(10)
    await world.service.heartbeat(BOB, ONLINE)

    assert [envelope["payload"]["status"] for _, envelope in world.publisher.take()] == [
        "online",
        "away",
        "online",
    ]


async def test_offline_after_the_timeout_once_with_the_last_heartbeat_time(world: World) -> None:
    await world.service.heartbeat(ALICE, ONLINE)
    world.clock.advance(20)
    await world.service.heartbeat(ALICE, AWAY)
    world.publisher.take()

    world.clock.advance(59)
    assert (await world.service.sweep()).offline == []
    world.clock.advance(1)
    swept = await world.service.sweep()
    again = await world.service.sweep()

    offline = world.presence("offline", START.replace(second=20))
    assert [update.user_id for update in swept.offline] == [ALICE]
    assert again.offline == []
    assert world.publisher.take() == [(PLANS, offline), (TRIPS, offline)]


async def test_no_offline_online_flap_when_heartbeats_resume_within_the_timeout(world: World) -> None:
    await world.service.heartbeat(ALICE, ONLINE)
    world.publisher.take()
    for _ in range(10):
        world.clock.advance(59)  # a flaky connection: each heartbeat comes just in time
        assert (await world.service.sweep()).offline == []
        await world.service.heartbeat(ALICE, ONLINE)

    assert world.publisher.take() == []


async def test_back_online_after_going_offline(world: World) -> None:
    await world.service.heartbeat(BOB, ONLINE)
    world.clock.advance(60)
    await world.service.sweep()
    world.clock.advance(300)
    await world.service.heartbeat(BOB, ONLINE)

    assert world.publisher.take() == [
        (PLANS, world.presence("online", START, BOB)),
        (PLANS, world.presence("offline", START, BOB)),
        (PLANS, world.presence("online", world.clock.now(), BOB)),
    ]


async def test_a_user_in_no_conversation_publishes_nothing(world: World) -> None:
    loner = UUID("00000000-0000-4000-8000-0000000001e5")
    await world.service.heartbeat(loner, ONLINE)
    world.clock.advance(60)
    swept = await world.service.sweep()

    assert len(swept.offline) == 1
    assert world.publisher.take() == []


async def test_while_the_database_is_down_the_sweep_keeps_the_deadline_for_later(world: World) -> None:
    await world.service.heartbeat(ALICE, ONLINE)
    world.publisher.take()
    world.clock.advance(60)
    world.memberships.down = True

    with pytest.raises(DatabaseUnavailable):
        await world.service.sweep()
    world.memberships.down = False
    await world.service.sweep()

    assert [envelope["payload"]["status"] for _, envelope in world.publisher.take()] == ["offline", "offline"]


async def test_while_the_database_is_down_typing_still_expires(world: World) -> None:
    """Typing stops need only Redis (7.3): a presence sweep that fails for want of PostgreSQL does not hold
    them back for the whole outage."""
    await world.service.heartbeat(ALICE, ONLINE)
    await world.service.typing(TypingKey(PLANS, ALICE, None), 5)
    world.publisher.take()
    world.clock.advance(60)
    world.memberships.down = True

    with pytest.raises(DatabaseUnavailable):
        await world.service.sweep()

    assert world.publisher.take() == [(PLANS, world.typing(world.clock.now()))]
    assert await world.store.typing_in(PLANS) == []


async def test_a_transition_whose_announcement_failed_is_published_once_by_a_later_sweep(
    world: World,
) -> None:
    """The store made the transition, so the next heartbeat keeps the status and reports nothing: without
    a retry the transition would never be announced (7.2, 7.5: exactly once)."""
    world.memberships.down = True
    with pytest.raises(DatabaseUnavailable):
        await world.service.heartbeat(ALICE, ONLINE)
    assert await world.service.heartbeat(ALICE, ONLINE) is None  # no change: nothing to announce
    world.memberships.down = False
    assert world.publisher.take() == []

    for _ in range(4):
        await world.service.sweep()

    online = world.presence("online", START)
    assert world.publisher.take() == [(PLANS, online), (TRIPS, online)]


async def test_an_unannounced_transition_gives_way_to_a_newer_one(world: World) -> None:
    world.memberships.down = True
    with pytest.raises(DatabaseUnavailable):
        await world.service.heartbeat(BOB, ONLINE)
    world.clock.advance(10)
    with pytest.raises(DatabaseUnavailable):
        await world.service.heartbeat(BOB, AWAY)
    world.memberships.down = False
    for _ in range(3):
        await world.service.sweep()
    world.clock.advance(10)
    await world.service.heartbeat(BOB, ONLINE)
    for _ in range(3):
        await world.service.sweep()

    assert [envelope["payload"]["status"] for _, envelope in world.publisher.take()] == ["away", "online"]


async def test_an_unannounced_transition_overtaken_on_another_replica_is_dropped(world: World) -> None:
    """Another replica made and announced a newer transition meanwhile: publishing the old one now would
    leave a stale status last."""
    other = PresenceService(world.store, world.publisher, world.memberships, typing_max_seconds=30)
    world.memberships.down = True
    with pytest.raises(DatabaseUnavailable):
        await world.service.heartbeat(ALICE, ONLINE)
    world.memberships.down = False
    world.clock.advance(5)
    await other.heartbeat(ALICE, AWAY)
    for _ in range(3):
        await world.service.sweep()

    assert [envelope["payload"]["status"] for _, envelope in world.publisher.take()] == ["away", "away"]


# ---- typing -----------------------------------------------------------------------------------------------


async def test_typing_start_publishes_its_expiry(world: World) -> None:
    await world.service.typing(TypingKey(PLANS, ALICE, ROOT), 5)

    assert world.publisher.take() == [(PLANS, world.typing(START.replace(second=5), ROOT))]


async def test_a_refresh_publishes_one_event_with_the_new_expiry_and_no_stop(world: World) -> None:
    await world.service.typing(TypingKey(PLANS, ALICE, None), 5)
    world.clock.advance(3)
    await world.service.typing(TypingKey(PLANS, ALICE, None), 5)

    assert world.publisher.take() == [
        (PLANS, world.typing(START.replace(second=5))),
        (PLANS, world.typing(START.replace(second=8))),
    ]
    world.clock.advance(4)
    assert (await world.service.sweep()).stopped == []


@pytest.mark.parametrize(("seconds", "expected"), [(31, 30), (1000, 30), (30, 30), (1, 1)])
async def test_seconds_are_clamped_to_the_maximum(world: World, seconds: int, expected: int) -> None:
    update = await world.service.typing(TypingKey(PLANS, ALICE, None), seconds)

    assert (update.expires_at - START).total_seconds() == expected


@pytest.mark.parametrize("seconds", [0, -1, -1000])
async def test_zero_or_negative_seconds_stop_now(world: World, seconds: int) -> None:
    await world.service.typing(TypingKey(PLANS, ALICE, ROOT), 5)
    world.clock.advance(1)
    await world.service.typing(TypingKey(PLANS, ALICE, ROOT), seconds)

    assert world.publisher.take()[-1] == (PLANS, world.typing(world.clock.now(), ROOT))
    assert await world.store.typing_in(PLANS) == []


async def test_expiry_publishes_one_stop_at_the_removal_time(world: World) -> None:
    await world.service.typing(TypingKey(PLANS, BOB, None), 2)
    world.publisher.take()
    world.clock.advance(2.5)

    swept = await world.service.sweep()
    again = await world.service.sweep()

    assert len(swept.stopped) == 1
    assert again.stopped == []
    assert world.publisher.take() == [(PLANS, world.typing(world.clock.now(), user=BOB))]
