"""Event-log retention (contract 6.9, 6.6): ``prune_once`` against the real database (by age, by count, the
prune horizon, concurrent pruners), then what a stream whose cursor fell behind the horizon receives."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg
import pytest

from tests.support.api import Api
from tests.support.conversations import create_conversation
from tests.support.factories import create_conversation as insert_conversation
from tests.support.factories import create_user
from tests.support.messages import post_root
from tests.support.sse import open_stream
from tests.support.stack import Stack
from threadline_shared.dto.events import ThreadActivity, ThreadActivityEvent
from threadline_shared.eventlog import LogEntry, append_events
from threadline_streamer import replay
from threadline_streamer.cursor import AfterSeq
from threadline_streamer.retention import prune_once

# Recent enough that a streamer's own retention (48 h, real time) never touches these events meanwhile.
BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
AGE = timedelta(hours=48)
RESYNC = {"code": "resync_required", "message": "event history is no longer available; refetch state"}


async def conversation_with_events(pool: asyncpg.Pool, count: int, owner: UUID | None = None) -> UUID:
    """A conversation with ``count`` logged events; event ``seq`` was written at BASE + ``seq`` minutes."""
    owner = owner or await create_user(pool, f"user{uuid4().hex[:8]}")
    conversation_id = await insert_conversation(pool, owner)
    event = ThreadActivityEvent(payload=ThreadActivity(root_id=uuid4(), last_activity_at=BASE))
    async with pool.acquire() as conn, conn.transaction():
        await append_events(conn, conversation_id, [LogEntry(event)] * count)
    await pool.execute(
        "UPDATE event_log SET created_at = $2::timestamptz + seq * interval '1 minute' "
        "WHERE conversation_id = $1",
        conversation_id,
        BASE,
    )
    return conversation_id


async def kept(pool: asyncpg.Pool, conversation_id: UUID) -> list[int]:
    rows = await pool.fetch(
        "SELECT seq FROM event_log WHERE conversation_id = $1 ORDER BY seq", conversation_id
    )
    return [row["seq"] for row in rows]


async def horizon(pool: asyncpg.Pool, conversation_id: UUID) -> tuple[int, datetime | None]:
    row = await pool.fetchrow(
        "SELECT pruned_seq, pruned_at FROM conversations WHERE id = $1", conversation_id
    )
    assert row is not None
    return row["pruned_seq"], row["pruned_at"]


def written_at(seq: int) -> datetime:
    return BASE + timedelta(minutes=seq)


# ---- replay against a moving horizon ---------------------------------------------------------------


async def test_a_replay_read_after_a_prune_overtook_its_plan_says_so_instead_of_skipping_events(
    pool: asyncpg.Pool,
) -> None:
    """The plan (6.6) found the cursor inside the log, then a prune removed the events right after it before
    the replay read them: the read reports the horizon, so the stream sends resync_required, not a gap."""
    conversation = await conversation_with_events(pool, 10)
    owner = await pool.fetchval("SELECT created_by FROM conversations WHERE id = $1", conversation)
    planned = await replay.plan(pool, conversation, AfterSeq(2))
    assert planned == replay.ReplayPlan(2, False)

    await prune_once(pool, now=written_at(5) + AGE, max_age=AGE, max_events=1000, batch_size=100)
    batch = await replay.events_after(pool, conversation, 2, owner, BASE - timedelta(days=1))

    assert batch.behind_horizon
    still = await replay.events_after(pool, conversation, 5, owner, BASE - timedelta(days=1))
    assert not still.behind_horizon
    assert [row["seq"] for row in still.rows] == list(range(6, 11))


# ---- prune_once ---------------------------------------------------------------------------------------


async def test_events_older_than_the_age_limit_are_pruned_and_the_horizon_moves_to_the_newest_of_them(
    pool: asyncpg.Pool,
) -> None:
    conversation = await conversation_with_events(pool, 10)
    now = written_at(5) + AGE + timedelta(seconds=30)  # events 1..5 are older than 48 h

    removed = await prune_once(pool, now=now, max_age=AGE, max_events=1000, batch_size=2)

    assert removed == 5
    assert await kept(pool, conversation) == list(range(6, 11))
    assert await horizon(pool, conversation) == (5, written_at(5))


async def test_events_beyond_the_newest_n_of_each_conversation_are_pruned(pool: asyncpg.Pool) -> None:
    busy = await conversation_with_events(pool, 25)
    quiet = await conversation_with_events(pool, 4)

    removed = await prune_once(pool, now=written_at(30), max_age=AGE, max_events=10, batch_size=4)

    assert removed == 15
    assert await kept(pool, busy) == list(range(16, 26))
    assert await horizon(pool, busy) == (15, written_at(15))
    assert await kept(pool, quiet) == [1, 2, 3, 4]
    assert await horizon(pool, quiet) == (0, None)


async def test_pruning_again_with_nothing_left_to_prune_changes_nothing(pool: asyncpg.Pool) -> None:
    conversation = await conversation_with_events(pool, 12)
    now = written_at(3) + AGE + timedelta(seconds=1)
    assert await prune_once(pool, now=now, max_age=AGE, max_events=10, batch_size=100) == 3

    assert await prune_once(pool, now=now, max_age=AGE, max_events=10, batch_size=100) == 0
    assert await kept(pool, conversation) == list(range(4, 13))
    assert await horizon(pool, conversation) == (3, written_at(3))


async def test_age_and_count_limits_together_keep_the_stricter_one(pool: asyncpg.Pool) -> None:
    conversation = await conversation_with_events(pool, 30)
    now = written_at(8) + AGE + timedelta(seconds=1)  # age alone: 1..8; count alone (newest 20): 1..10

    assert await prune_once(pool, now=now, max_age=AGE, max_events=20, batch_size=3) == 10
    assert await kept(pool, conversation) == list(range(11, 31))
    assert await horizon(pool, conversation) == (10, written_at(10))


async def test_a_pruner_skips_the_rows_another_one_claimed_and_prunes_the_rest(pool: asyncpg.Pool) -> None:
    conversation = await conversation_with_events(pool, 120)
    async with pool.acquire() as other, other.transaction():  # another replica, mid-batch
        await other.execute(
            "SELECT seq FROM event_log WHERE conversation_id = $1 AND seq <= 5 FOR UPDATE", conversation
        )

        removed = await prune_once(pool, now=written_at(0), max_age=AGE, max_events=30, batch_size=5)

        assert removed == 85
        assert await kept(pool, conversation) == [1, 2, 3, 4, 5, *range(91, 121)]
        assert await horizon(pool, conversation) == (90, written_at(90))
        await other.execute("DELETE FROM event_log WHERE conversation_id = $1 AND seq <= 5", conversation)
    assert await kept(pool, conversation) == list(range(91, 121))


async def test_concurrent_pruners_remove_every_row_once_without_deadlocking(pool: asyncpg.Pool) -> None:
    """Several rounds, since interleavings vary: each round three pruners share six conversations."""
    owner = await create_user(pool, "owner")
    now = written_at(40) + AGE + timedelta(seconds=1)  # by age: 1..40; by count (newest 30): 1..90
    for _ in range(6):
        conversations = [await conversation_with_events(pool, 120, owner) for _ in range(6)]

        removed = await asyncio.gather(
            *(prune_once(pool, now=now, max_age=AGE, max_events=30, batch_size=4) for _ in range(3))
        )

        assert sum(removed) == 6 * 90
        for conversation in conversations:
            assert await kept(pool, conversation) == list(range(91, 121))
            assert await horizon(pool, conversation) == (90, written_at(90))


# ---- streams behind the horizon (end to end) -------------------------------------------------------


async def pruned_conversation(api: Api, pool: asyncpg.Pool) -> tuple[str, int, datetime]:
    """alice's conversation (she is alone in it) with four root posts, 3 events each, pruned to the newest 4
    events: it, the horizon's seq (8) and its created_at."""
    alice = await api.persona("alice")
    conversation = await create_conversation(api, alice, assistant_replies=False)
    for n in range(4):
        await post_root(api, alice, conversation, f"root {n}")
    await prune_once(pool, now=datetime.now(UTC), max_age=AGE, max_events=4, batch_size=100)
    pruned_seq, pruned_at = await horizon(pool, UUID(conversation))
    assert pruned_seq == 8 and pruned_at is not None
    return conversation, pruned_seq, pruned_at


@pytest.mark.e2e
async def test_a_cursor_behind_the_horizon_gets_resync_required_first_then_live_events(
    stack: Stack, api: Api, pool: asyncpg.Pool
) -> None:
    conversation, pruned_seq, _ = await pruned_conversation(api, pool)
    alice = await api.persona("alice")
    async with open_stream(
        stack.url("streamer"), conversation, alice.token, last_event_id=pruned_seq - 1
    ) as stream:
        first = await stream.next()
        await stream.until("presence.update")
        await post_root(api, alice, conversation, "after the pruning")
        live = await stream.durable(3)

    assert (first.event, first.id, first.payload) == ("error", None, RESYNC)
    assert [event.id for event in live] == [13, 14, 15], "no replay of the retained events, live ones only"


@pytest.mark.e2e
async def test_a_cursor_at_the_horizon_replays_the_retained_events(
    stack: Stack, api: Api, pool: asyncpg.Pool
) -> None:
    conversation, pruned_seq, _ = await pruned_conversation(api, pool)
    alice = await api.persona("alice")
    async with open_stream(
        stack.url("streamer"), conversation, alice.token, last_event_id=pruned_seq
    ) as stream:
        replayed = await stream.durable(4)

    assert [event.id for event in replayed] == [9, 10, 11, 12]


@pytest.mark.e2e
async def test_since_before_the_horizon_time_gets_resync_required(
    stack: Stack, api: Api, pool: asyncpg.Pool
) -> None:
    conversation, _, pruned_at = await pruned_conversation(api, pool)
    alice = await api.persona("alice")
    since = int(pruned_at.timestamp() * 1000) - 1
    async with open_stream(
        stack.url("streamer"), conversation, alice.token, params={"since": str(since)}
    ) as stream:
        first = await stream.next()
        snapshot = await stream.next()
        await post_root(api, alice, conversation, "after the pruning")
        live = await stream.durable(1)

    assert (first.event, first.id, first.payload) == ("error", None, RESYNC)
    assert snapshot.event == "presence.update"
    assert live[0].id == 13
