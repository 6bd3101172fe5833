"""Reads stay bounded and index-backed (contract 5.4, 5.5, 5.8): a tree page, a thread-list page and an unread
summary each cost the same few SQL queries whatever the size of the thread or the conversation, and the page
queries read their order from an index instead of sorting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from tests.support.api import Api, running_api
from tests.support.messages import Room, insert_thread, open_room
from threadline_shared.ids import uuid7

MAX_QUERIES = 8  # authentication, membership, the page itself, pool resets: a handful


@dataclass(eq=False)  # asyncpg keeps its query loggers in a set
class QueryLog:
    """Every query the api ran (asyncpg's LoggedQuery records), in order."""

    records: list[Any] = field(default_factory=list)

    def __call__(self, record: Any) -> None:
        self.records.append(record)

    async def during(self, request: Callable[[], Awaitable[httpx.Response]]) -> list[Any]:
        """The queries run while serving ``request``, which must succeed."""
        await asyncio.sleep(0)
        self.records.clear()
        response = await request()
        assert response.status_code == 200, response.text
        await asyncio.sleep(0)  # asyncpg hands records to loggers with call_soon
        return list(self.records)


@pytest.fixture
def queries() -> QueryLog:
    return QueryLog()


@pytest.fixture
async def api(
    pool: asyncpg.Pool, redis: Redis, database_url: str, redis_url: str, queries: QueryLog
) -> AsyncIterator[Api]:
    async with running_api(database_url, redis_url, query_observer=queries) as running:
        yield running


async def insert_threads(pool: asyncpg.Pool, room: Room, n: int) -> None:
    """``n`` threads of one message each by alice, at distinct times."""
    roots = [uuid7() for _ in range(n)]
    base = datetime(2025, 3, 8, tzinfo=UTC).timestamp()
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(
            """
            INSERT INTO messages (id, conversation_id, root_id, author_user_id, role, content, path, depth,
                                  created_at)
            VALUES ($1, $2, $1, $3, 'user', 'x', $4::ltree, 1, to_timestamp($5))
            """,
            [(root, UUID(room.id), room.alice.id, "m" + root.hex, base + i) for i, root in enumerate(roots)],
        )
        await conn.executemany(
            """
            INSERT INTO threads (root_id, conversation_id, created_at, last_activity_at)
            VALUES ($1, $2, to_timestamp($3), to_timestamp($3))
            """,
            [(root, UUID(room.id), base + i) for i, root in enumerate(roots)],
        )


async def branching_thread(pool: asyncpg.Pool, room: Room, n: int) -> str:
    """A thread of ``n`` messages by alice, each replying to one of the first few."""
    ids = await insert_thread(pool, room.id, room.alice.id, [None] + [i // 4 for i in range(n - 1)])
    return str(ids[0])


def literal(value: object) -> str:
    return "NULL" if value is None else str(value) if isinstance(value, int) else f"'{value}'"


async def plans(pool: asyncpg.Pool, record: Any) -> list[str]:
    """The plans PostgreSQL picks for a logged query, with sequential scans discouraged as on a big table:
    for its arguments, and the generic plan a prepared statement (asyncpg prepares every query) may switch
    to after five executions."""
    arguments = ", ".join(literal(arg) for arg in record.args)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        custom = await conn.fetch("EXPLAIN " + record.query, *record.args)
        await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        await conn.execute("PREPARE page AS " + record.query)
        generic = await conn.fetch(f"EXPLAIN EXECUTE page({arguments})")
        await conn.execute("DEALLOCATE page")
    return ["\n".join(row[0] for row in rows) for rows in (custom, generic)]


def seeks(plan: str, index: str) -> bool:
    """Whether ``plan`` reads ``index`` from the cursor on: no sort, no rows filtered after the scan."""
    return index in plan and "Sort" not in plan and "Filter" not in plan


def page_query(records: list[Any], table: str) -> Any:
    (record,) = [r for r in records if "ORDER BY" in r.query and f"FROM {table}" in r.query]
    return record


async def test_a_tree_page_costs_the_same_queries_for_10_or_300_messages(
    api: Api, pool: asyncpg.Pool, queries: QueryLog
) -> None:
    room = await open_room(api)
    small, large = await branching_thread(pool, room, 10), await branching_thread(pool, room, 300)
    await queries.during(lambda: api.get(f"/api/threads/{small}/tree", room.bob))  # warm the session

    for_small = await queries.during(lambda: api.get(f"/api/threads/{small}/tree", room.bob))
    for_large = await queries.during(lambda: api.get(f"/api/threads/{large}/tree", room.bob))

    assert len(for_small) == len(for_large) <= MAX_QUERIES
    assert [r.query for r in for_small] == [r.query for r in for_large]


async def test_a_thread_list_page_costs_the_same_queries_for_10_or_300_threads(
    api: Api, pool: asyncpg.Pool, queries: QueryLog
) -> None:
    room = await open_room(api)
    crowded = await open_room(api, title="Crowded")
    await insert_threads(pool, room, 10)
    await insert_threads(pool, crowded, 300)
    await queries.during(lambda: api.get(f"/api/conversations/{room.id}/threads", room.bob))

    for_small = await queries.during(lambda: api.get(f"/api/conversations/{room.id}/threads", room.bob))
    for_large = await queries.during(lambda: api.get(f"/api/conversations/{crowded.id}/threads", room.bob))

    assert len(for_small) == len(for_large) <= MAX_QUERIES


async def test_an_unread_summary_costs_the_same_queries_for_10_or_300_threads(
    api: Api, pool: asyncpg.Pool, queries: QueryLog
) -> None:
    room = await open_room(api)
    crowded = await open_room(api, title="Crowded")
    await insert_threads(pool, room, 10)
    await insert_threads(pool, crowded, 300)
    await branching_thread(pool, crowded, 300)
    await queries.during(lambda: api.get(f"/api/conversations/{room.id}/unread", room.bob))

    for_small = await queries.during(lambda: api.get(f"/api/conversations/{room.id}/unread", room.bob))
    for_large = await queries.during(lambda: api.get(f"/api/conversations/{crowded.id}/unread", room.bob))

    assert len(for_small) == len(for_large) <= MAX_QUERIES


async def test_a_tree_page_reads_its_order_from_the_tree_index(
    api: Api, pool: asyncpg.Pool, queries: QueryLog
) -> None:
    room = await open_room(api)
    root = await branching_thread(pool, room, 300)
    await pool.execute("ANALYZE messages")
    first = await queries.during(lambda: api.get(f"/api/threads/{root}/tree", room.bob, params={"limit": 50}))
    cursor = (await api.get(f"/api/threads/{root}/tree", room.bob, params={"limit": 50})).json()[
        "next_cursor"
    ]
    later = await queries.during(
        lambda: api.get(f"/api/threads/{root}/tree", room.bob, params={"limit": 50, "cursor_path": cursor})
    )

    for records in (first, later):
        for explained in await plans(pool, page_query(records, "messages")):
            assert seeks(explained, "messages_tree"), explained


async def test_a_thread_list_page_reads_its_order_from_the_activity_index(
    api: Api, pool: asyncpg.Pool, queries: QueryLog
) -> None:
    room = await open_room(api)
    await insert_threads(pool, room, 300)
    await pool.execute("ANALYZE threads")
    first = await queries.during(
        lambda: api.get(f"/api/conversations/{room.id}/threads", room.bob, params={"limit": 20})
    )
    cursor = (await api.get(f"/api/conversations/{room.id}/threads", room.bob, params={"limit": 20})).json()
    later = await queries.during(
        lambda: api.get(
            f"/api/conversations/{room.id}/threads",
            room.bob,
            params={"limit": 20, "after": cursor["next_after"]},
        )
    )

    for records in (first, later):
        for explained in await plans(pool, page_query(records, "threads")):
            assert seeks(explained, "threads_by_activity"), explained


async def test_a_posts_unread_counts_read_only_the_unread_messages(api: Api, pool: asyncpg.Pool) -> None:
    """The counts a post computes for every other participant (``tl_unread_counts``) come from one index
    scan of the thread from the lowest participant's bound, which reads no message before it, in the plan
    for the call's arguments and in the generic plan, once the statistics know threads of a few messages."""
    room = await open_room(api)
    elsewhere = await open_room(api, title="Elsewhere")
    root = await branching_thread(pool, room, 300)
    for _ in range(60):  # the thread is a small part of the table, as in a deployment
        await branching_thread(pool, elsewhere, 8)
    await pool.execute("ANALYZE messages")
    counts = SimpleNamespace(
        query="SELECT * FROM tl_unread_counts($1, $2, ARRAY[]::uuid[])", args=(UUID(room.id), UUID(root))
    )

    for explained in await plans(pool, counts):
        lines = explained.splitlines()
        scans = [i for i, line in enumerate(lines) if "messages_thread_time" in line]
        assert scans, explained
        assert "Index Cond" in lines[scans[0] + 1], explained
        assert "created_at > (InitPlan" in lines[scans[0] + 1], explained  # the lowest bound
