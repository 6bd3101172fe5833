"""Posts made together: the lean path makes the posts of one batch in one transaction (``tl_post_messages``,
db migration 0003; threadline_api.messages.fastpath). Each is made exactly as alone; a post that would wait
for another transaction is left to be made alone; a batch the database refuses is made post by post; posts
lost with their connection are answered 500 and not made again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from redis.asyncio import Redis

from tests.support.api import Api
from tests.support.messages import (
    events_after,
    last_seq,
    open_room,
    post_root,
    unlimited_api,
    unread_counts,
)
from tests.support.problems import assert_problem
from threadline_api.messages.fastpath import Posts, rolled_back
from threadline_api.messages.posting import BUSY, Post, Posted, post_messages
from threadline_shared.ids import uuid7

REPLY_EVENTS = ["message.created", "thread.activity", "unread.update", "unread.update"]


@pytest.fixture
async def observed(
    pool: asyncpg.Pool, redis: Redis, database_url: str, redis_url: str
) -> AsyncIterator[tuple[Api, list[Any]]]:
    """An api whose posting limit no test reaches and whose batches wait for locks as long as it takes (see
    :func:`one_batch`), and the posting calls it sends to the database (``redis``: its buckets are emptied
    after the test, as the ``api`` fixture's are)."""
    calls: list[Any] = []

    def observe(record: Any) -> None:
        if "tl_post_message" in record.query:
            calls.append(record)

    async with unlimited_api(
        pool, database_url, redis_url, query_observer=observe, post_batch_lock_wait_ms=60_000
    ) as api:
        yield api, calls


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.01)


async def blocked_by(pool: asyncpg.Pool, holder: asyncpg.Connection) -> list[int]:
    """The backends that wait for a lock ``holder`` holds."""
    pid = holder.get_server_pid()
    rows = await pool.fetch("SELECT pid FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))", pid)
    return [row["pid"] for row in rows]


def lean_posts(api: Api) -> Posts:
    assert api.app is not None
    posts: Posts = api.app.state.posts
    return posts


HOLD_WATERMARK = "SELECT FROM read_watermarks WHERE user_id = $1 AND root_id = $2 FOR UPDATE"
"""A post takes its author's watermark of the thread (posting marks it read): held, the post waits for it."""


@asynccontextmanager
async def one_batch(api: Api, pool: asyncpg.Pool, posts: int) -> AsyncIterator[None]:
    """The ``posts`` sent in the block wait in line and go as one batch when it is left: the lean path's one
    batch in flight is a reply that waits for its author's watermark row, held here until then (the api's
    batches must wait for locks that long: ``post_batch_lock_wait_ms``)."""
    room = await open_room(api)
    root = await post_root(api, room.alice, room.id)
    async with pool.acquire() as holder:
        transaction = holder.transaction()
        await transaction.start()
        try:
            await holder.execute(HOLD_WATERMARK, room.alice.id, UUID(root))
            blocker = asyncio.create_task(
                api.post(f"/api/messages/{root}/reply", room.alice, json={"content": "held"})
            )
            await until(lambda: _at_least(blocked_by(pool, holder), 1))
            yield
            await until(lambda: _true(lean_posts(api).waiting == posts))
        finally:
            await transaction.commit()
    assert (await blocker).status_code == 201


async def _at_least(pids: Awaitable[list[int]], count: int) -> bool:
    return len(await pids) >= count


async def _true(value: bool) -> bool:
    return value


def made_together(calls: list[Any]) -> list[int]:
    """The number of posts of each tl_post_messages call."""
    return [len(call.args[0]) for call in calls if "tl_post_messages(" in call.query]


async def test_posts_made_together_are_numbered_and_each_made_as_alone(api: Api, pool: asyncpg.Pool) -> None:
    first, second, third = await open_room(api), await open_room(api), await open_room(api)
    root = await post_root(api, first.alice, first.id)
    seqs = [await last_seq(pool, room.id) for room in (first, second, third)]

    outcomes = await post_messages(
        pool,
        [
            Post(None, UUID(root), first.bob.id, "a reply", "user"),
            Post(UUID(second.id), None, second.alice.id, "a root", "user"),
            Post(None, uuid7(), first.bob.id, "to nothing", "user"),
            Post(UUID(third.id), None, third.dave.id, "not a participant", "user"),
        ],
        unread_fanout_max=api.settings.unread_fanout_max_participants,
        lock_wait_ms=None,
    )

    reply, new_root, unknown, outsider = outcomes
    assert isinstance(reply, Posted) and isinstance(new_root, Posted)
    assert (reply.conversation_id, reply.root_id, reply.depth) == (UUID(first.id), UUID(root), 2)
    assert (new_root.conversation_id, new_root.root_id, new_root.depth) == (
        UUID(second.id),
        new_root.message_id,
        1,
    )
    assert (unknown, outsider) == ("message_not_found", "not_participant")
    first_events = await events_after(pool, first.id, seqs[0])
    assert [event["type"] for event in first_events] == REPLY_EVENTS
    assert [event["seq"] for event in first_events] == list(range(seqs[0] + 1, seqs[0] + 5))
    assert first_events[0]["envelope"]["payload"]["id"] == str(reply.message_id)
    second_events = await events_after(pool, second.id, seqs[1])
    assert [event["type"] for event in second_events] == ["thread.new", *REPLY_EVENTS]
    assert await events_after(pool, third.id, seqs[2]) == []
    stored = await pool.fetch("SELECT id FROM messages WHERE content IN ('to nothing', 'not a participant')")
    assert stored == []
    for room, events in ((first, first_events), (second, second_events)):  # the counts are exact
        personas = {str(persona.id): persona for persona in (room.alice, room.bob, room.carol)}
        updates = [event for event in events if event["type"] == "unread.update"]
        assert len(updates) == 2
        for event in updates:
            payload = event["envelope"]["payload"]
            fresh = await unread_counts(api, personas[event["audience"]], room.id)
            assert fresh[payload["root_id"]] == payload["unread"]


async def test_a_second_post_into_a_conversation_is_left_to_be_made_alone(
    api: Api, pool: asyncpg.Pool
) -> None:
    room = await open_room(api)
    roots = [UUID(await post_root(api, room.alice, room.id)) for _ in range(2)]
    seq = await last_seq(pool, room.id)

    outcomes = await post_messages(
        pool,
        [
            Post(None, roots[0], room.bob.id, "first", "user"),
            Post(None, roots[1], room.bob.id, "second", "user"),
        ],
        unread_fanout_max=api.settings.unread_fanout_max_participants,
        lock_wait_ms=None,
    )

    assert isinstance(outcomes[0], Posted) and outcomes[1] == BUSY
    assert await last_seq(pool, room.id) == seq + len(REPLY_EVENTS)
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE content = 'second'") == 0


async def test_a_reply_whose_thread_is_locked_is_not_waited_for(api: Api, pool: asyncpg.Pool) -> None:
    busy, quiet = await open_room(api), await open_room(api)
    root = await post_root(api, busy.alice, busy.id)

    async with pool.acquire() as holder, holder.transaction():
        await holder.execute("SELECT FROM threads WHERE root_id = $1 FOR UPDATE", UUID(root))
        async with asyncio.timeout(10):
            outcomes = await post_messages(
                pool,
                [
                    Post(None, UUID(root), busy.bob.id, "waits", "user"),
                    Post(UUID(quiet.id), None, quiet.alice.id, "goes", "user"),
                ],
                unread_fanout_max=api.settings.unread_fanout_max_participants,
                lock_wait_ms=None,
            )

    assert outcomes[0] == BUSY and isinstance(outcomes[1], Posted)
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE content = 'waits'") == 0


async def test_a_batch_of_posts_is_made_in_one_transaction(
    observed: tuple[Api, list[Any]], pool: asyncpg.Pool
) -> None:
    api, calls = observed
    rooms = [await open_room(api) for _ in range(4)]
    roots = [await post_root(api, room.alice, room.id) for room in rooms]
    seqs = [await last_seq(pool, room.id) for room in rooms]

    before = len(calls)
    async with one_batch(api, pool, posts=5):
        answers = [
            asyncio.create_task(
                api.post(f"/api/messages/{root}/reply", room.bob, json={"content": "together"})
            )
            for room, root in zip(rooms, roots, strict=True)
        ]
        answers.append(  # a second reply into the first conversation: made alone, after the batch's
            asyncio.create_task(
                api.post(f"/api/messages/{roots[0]}/reply", rooms[0].bob, json={"content": "2"})
            )
        )

    responses = [await answer for answer in answers]
    assert [response.status_code for response in responses] == [201] * 5
    assert made_together(calls[before:]) == [1, 1, 5]  # one_batch's root and its held reply, then these
    made = {response.json()["message_id"] for response in responses}
    stored = await pool.fetch("SELECT id FROM messages WHERE content IN ('together', '2')")
    assert {str(row["id"]) for row in stored} == made
    for index, (room, seq) in enumerate(zip(rooms, seqs, strict=True)):
        events = await events_after(pool, room.id, seq)
        assert [event["seq"] for event in events] == list(range(seq + 1, seq + len(events) + 1))
        assert [event["type"] for event in events] == REPLY_EVENTS * (2 if index == 0 else 1)


async def test_a_batch_the_database_refuses_is_made_post_by_post(
    observed: tuple[Api, list[Any]], pool: asyncpg.Pool
) -> None:
    api, calls = observed
    rooms = [await open_room(api) for _ in range(3)]
    arguments = "(uuid[], uuid[], uuid[], uuid[], text[], text[], text[], text[], int, int, text, text, int)"

    before = len(calls)
    try:
        async with one_batch(api, pool, posts=3):
            # Gone once the batch that holds these back is running.
            await pool.execute(f"ALTER FUNCTION tl_post_messages{arguments} RENAME TO tl_gone")
            answers = [
                asyncio.create_task(
                    api.post(f"/api/threads/{room.id}/root", room.alice, json={"content": "x"})
                )
                for room in rooms
            ]
        responses = [await answer for answer in answers]
    finally:
        await pool.execute(f"ALTER FUNCTION tl_gone{arguments} RENAME TO tl_post_messages")

    assert [response.status_code for response in responses] == [201] * 3
    assert made_together(calls[before:]) == [1, 1, 3]  # (see one_batch) tried once together, then alone
    for room in rooms:
        assert (
            await pool.fetchval("SELECT count(*) FROM messages WHERE conversation_id = $1", UUID(room.id))
            == 1
        )


async def test_posts_lost_with_their_connection_are_answered_500_and_not_made_again(
    observed: tuple[Api, list[Any]], pool: asyncpg.Pool
) -> None:
    """Made or not is unknown once the connection is lost (here: before the commit), so neither post is
    handed on or made again."""
    api, calls = observed
    rooms = [await open_room(api) for _ in range(2)]
    roots = [await post_root(api, room.alice, room.id) for room in rooms]

    async with pool.acquire() as holder, holder.transaction():
        for root in roots:  # the batch waits for the first post's
            await holder.execute(HOLD_WATERMARK, rooms[0].alice.id, UUID(root))
        async with one_batch(api, pool, posts=2):
            answers = [
                asyncio.create_task(
                    api.post(f"/api/messages/{root}/reply", room.alice, json={"content": "lost"})
                )
                for room, root in zip(rooms, roots, strict=True)
            ]
        await until(lambda: _at_least(blocked_by(pool, holder), 1))
        (pid,) = await blocked_by(pool, holder)
        assert "tl_post_messages(" in await pool.fetchval(
            "SELECT query FROM pg_stat_activity WHERE pid = $1", pid
        )
        assert await pool.fetchval("SELECT pg_terminate_backend($1)", pid)
        responses = [await answer for answer in answers]

    for response in responses:
        assert_problem(response, 500, "RGP.INTERNAL")
    assert [call for call in calls if "tl_post_message(" in call.query and "lost" in call.args] == []
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE content = 'lost'") == 0


async def test_a_post_whose_conversation_is_locked_is_not_waited_for(api: Api, pool: asyncpg.Pool) -> None:
    busy, quiet = await open_room(api), await open_room(api)

    async with pool.acquire() as holder, holder.transaction():
        await holder.execute("SELECT FROM conversations WHERE id = $1 FOR NO KEY UPDATE", UUID(busy.id))
        async with asyncio.timeout(10):
            outcomes = await post_messages(
                pool,
                [
                    Post(UUID(busy.id), None, busy.alice.id, "waits", "user"),
                    Post(UUID(quiet.id), None, quiet.alice.id, "goes", "user"),
                ],
                unread_fanout_max=api.settings.unread_fanout_max_participants,
                lock_wait_ms=None,
            )

    assert outcomes[0] == BUSY and isinstance(outcomes[1], Posted)
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE content = 'waits'") == 0


async def test_posts_made_together_wait_for_a_lock_no_longer_than_told(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    root = await post_root(api, room.alice, room.id)
    seq = await last_seq(pool, room.id)

    async with pool.acquire() as holder, holder.transaction():
        await holder.execute(HOLD_WATERMARK, room.alice.id, UUID(root))
        with pytest.raises(asyncpg.LockNotAvailableError):
            await post_messages(
                pool,
                [Post(None, UUID(root), room.alice.id, "waits", "user")],
                unread_fanout_max=api.settings.unread_fanout_max_participants,
                lock_wait_ms=50,
            )

    assert await last_seq(pool, room.id) == seq
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE content = 'waits'") == 0


async def test_a_batch_kept_waiting_for_a_lock_is_made_post_by_post_and_holds_back_no_other(
    api: Api, pool: asyncpg.Pool
) -> None:
    """The api's batches wait for a lock at most ``post_batch_lock_wait_ms`` (50 ms by default)."""
    held, free = await open_room(api), await open_room(api)
    root = await post_root(api, held.alice, held.id)

    async def waiting_alone(holder: asyncpg.Connection) -> bool:
        pids = await blocked_by(pool, holder)
        queries = await pool.fetch("SELECT query FROM pg_stat_activity WHERE pid = ANY ($1::int[])", pids)
        return any("tl_post_message(" in row["query"] for row in queries)

    async with pool.acquire() as holder, holder.transaction():
        await holder.execute(HOLD_WATERMARK, held.alice.id, UUID(root))
        waiting = asyncio.create_task(
            api.post(f"/api/messages/{root}/reply", held.alice, json={"content": "waits"})
        )
        await until(lambda: waiting_alone(holder))  # the batch gave up waiting: now made on its own
        answered = await api.post(f"/api/threads/{free.id}/root", free.alice, json={"content": "goes"})
        assert answered.status_code == 201
        assert not waiting.done()

    made = await waiting
    assert made.status_code == 201
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE content = 'waits'") == 1


@pytest.mark.parametrize(
    ("error", "rolled"),
    [
        (asyncpg.LockNotAvailableError, True),  # 55P03
        (asyncpg.DeadlockDetectedError, True),  # 40P01
        (asyncpg.SerializationError, True),  # 40001
        (asyncpg.UndefinedFunctionError, True),  # 42883
        (asyncpg.UniqueViolationError, True),  # 23505
        (asyncpg.QueryCanceledError, False),  # 57014: a cancel may land after the commit
        (asyncpg.AdminShutdownError, False),  # 57P01: a terminated backend may have committed
        (asyncpg.CrashShutdownError, False),  # 57P02
        (asyncpg.ConnectionFailureError, False),  # 08006
        (asyncpg.InternalServerError, False),  # XX000
    ],
)
def test_only_errors_that_say_the_transaction_rolled_back_are_taken_as_such(
    error: type[asyncpg.PostgresError], rolled: bool
) -> None:
    assert rolled_back(error("test")) is rolled


async def test_posts_still_being_made_at_shutdown_are_answered(api: Api, pool: asyncpg.Pool) -> None:
    """The lifespan drains the posts made on their own before the pool closes: a post still waiting then is
    cancelled and answered 500 (it may have committed), not left to a task the closing loop destroys."""
    room = await open_room(api)
    root = await post_root(api, room.alice, room.id)

    async with pool.acquire() as holder, holder.transaction():
        await holder.execute("SELECT FROM threads WHERE root_id = $1 FOR UPDATE", UUID(root))
        waiting = asyncio.create_task(
            api.post(f"/api/messages/{root}/reply", room.bob, json={"content": "x"})
        )
        await until(lambda: _at_least(blocked_by(pool, holder), 1))  # made on its own, waiting

        await lean_posts(api).drain(0.05)

        assert_problem(await waiting, 500, "RGP.INTERNAL")
        assert not lean_posts(api)._background
