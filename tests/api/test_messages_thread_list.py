"""The thread list (contract 5.1 ThreadSummary, 5.5): newest activity first, keyset pages on
``(last_activity_at, root_id)`` that stay exact while threads move."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from redis.asyncio import Redis

from tests.support.api import Api, Persona
from tests.support.messages import (
    insert_thread,
    open_room,
    post_root,
    reply,
    thread_list,
    unlimited_api,
)
from tests.support.problems import assert_problem
from threadline_shared.ids import uuid7


@pytest.fixture
async def api(pool: asyncpg.Pool, redis: Redis, database_url: str, redis_url: str) -> AsyncIterator[Api]:
    """These tests post dozens of threads: the api starts with the posting limit raised."""
    async with unlimited_api(pool, database_url, redis_url) as running:
        yield running


def ids(page: dict[str, Any]) -> list[str]:
    return [thread["root_id"] for thread in page["threads"]]


async def created_at(pool: asyncpg.Pool, message_id: str) -> str:
    value: datetime = await pool.fetchval("SELECT created_at FROM messages WHERE id = $1", UUID(message_id))
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def insert_threads_at(
    pool: asyncpg.Pool, conversation_id: str, author: Persona, at: datetime, n: int
) -> None:
    """``n`` one-message threads whose activity is all at ``at``."""
    roots = [uuid7() for _ in range(n)]
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(
            """
            INSERT INTO messages (id, conversation_id, root_id, author_user_id, role, content, path, depth,
                                  created_at)
            VALUES ($1, $2, $1, $3, 'user', 'same time', $4::ltree, 1, $5)
            """,
            [(root, UUID(conversation_id), author.id, "m" + root.hex, at) for root in roots],
        )
        await conn.executemany(
            """
            INSERT INTO threads (root_id, conversation_id, created_at, last_activity_at)
            VALUES ($1, $2, $3, $3)
            """,
            [(root, UUID(conversation_id), at) for root in roots],
        )


async def test_a_summary_describes_its_thread(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    content = "\n  " + "x" * 239 + "yz  "
    root = await post_root(api, room.bob, room.id, content)
    child = await reply(api, room.alice, root)
    latest = await reply(api, room.bob, child)
    assert (await api.post(f"/api/messages/{child}/delete", room.alice)).status_code == 204

    (summary,) = (await thread_list(api, room.carol, room.id))["threads"]

    assert summary == {
        "root_id": root,
        "root_excerpt": "x" * 239 + "y",
        "root_author": str(room.bob.id),
        "created_at": await created_at(pool, root),
        "last_activity_at": await created_at(pool, latest),
        "message_count": 3,
        "participant_count": 3,
    }


async def test_a_deleted_root_stays_listed_with_an_empty_excerpt(api: Api) -> None:
    room = await open_room(api)
    root = await post_root(api, room.bob, room.id, "secret")
    assert (await api.post(f"/api/messages/{root}/delete", room.bob)).status_code == 204

    (summary,) = (await thread_list(api, room.bob, room.id))["threads"]

    assert (summary["root_id"], summary["root_excerpt"], summary["message_count"]) == (root, "", 1)


async def test_a_root_without_author_lists_a_null_root_author(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    await insert_thread(pool, room.id, None, [None], role="assistant")

    (summary,) = (await thread_list(api, room.bob, room.id))["threads"]

    assert "root_author" in summary and summary["root_author"] is None


async def test_participant_count_counts_the_active_participants_of_the_conversation(api: Api) -> None:
    room = await open_room(api)
    await post_root(api, room.bob, room.id)
    await post_root(api, room.alice, room.id)
    assert (
        await api.delete(f"/api/conversations/{room.id}/participants/{room.carol.id}", room.carol)
    ).status_code == 204

    threads = (await thread_list(api, room.bob, room.id))["threads"]

    assert [thread["participant_count"] for thread in threads] == [2, 2]


async def test_a_reply_moves_its_thread_to_the_top(api: Api) -> None:
    room = await open_room(api)
    first = await post_root(api, room.bob, room.id)
    second = await post_root(api, room.bob, room.id)
    third = await post_root(api, room.bob, room.id)
    assert ids(await thread_list(api, room.bob, room.id)) == [third, second, first]

    await reply(api, room.alice, first)

    assert ids(await thread_list(api, room.bob, room.id)) == [first, third, second]


async def test_edit_delete_and_restore_leave_activity_unchanged(api: Api) -> None:
    room = await open_room(api)
    first = await post_root(api, room.bob, room.id)
    second = await post_root(api, room.bob, room.id)
    before = await thread_list(api, room.bob, room.id)

    assert (
        await api.post(f"/api/messages/{first}/edit", room.bob, json={"content": "new"})
    ).status_code == 204
    assert (await api.post(f"/api/messages/{first}/delete", room.bob)).status_code == 204
    assert (await api.post(f"/api/messages/{first}/restore", room.alice)).status_code == 204
    after = await thread_list(api, room.bob, room.id)

    assert ids(after) == [second, first]
    assert [t["last_activity_at"] for t in after["threads"]] == [
        t["last_activity_at"] for t in before["threads"]
    ]
    assert after["threads"][1]["root_excerpt"] == "new"


async def test_paging_lists_each_thread_once_while_threads_move(api: Api) -> None:
    room = await open_room(api)
    threads = [await post_root(api, room.bob, room.id, f"thread {n}") for n in range(30)]
    newest_first = threads[::-1]
    seen: list[str] = []
    moved_unseen: set[str] = set()

    page = await thread_list(api, room.bob, room.id, limit=7)
    pages = [page]
    while "next_after" in page:
        seen += ids(page)
        await reply(api, room.alice, seen[0])  # already seen: becomes newer than the cursor
        unseen = [t for t in newest_first if t not in seen and t not in moved_unseen]
        moved_unseen.add(unseen[-1])  # not seen yet: jumps above the cursor, so this pass skips it
        await reply(api, room.alice, unseen[-1])
        page = await thread_list(api, room.bob, room.id, limit=7, after=page["next_after"])
        pages.append(page)
    seen += ids(page)

    assert len(seen) == len(set(seen))
    assert set(seen) | moved_unseen == set(threads) and not set(seen) & moved_unseen
    assert [len(p["threads"]) for p in pages[:-1]] == [7] * (len(pages) - 1)
    unmoved = [t for t in newest_first if t in seen]
    assert [t for t in seen if t in unmoved] == unmoved  # threads that did not move keep their order


async def test_next_after_is_absent_when_the_page_ends_the_list(api: Api) -> None:
    room = await open_room(api)
    threads = [await post_root(api, room.bob, room.id) for _ in range(4)]

    whole = await thread_list(api, room.bob, room.id, limit=4)
    first = await thread_list(api, room.bob, room.id, limit=2)
    second = await thread_list(api, room.bob, room.id, limit=2, after=first["next_after"])

    assert ids(whole) == threads[::-1] and "next_after" not in whole
    assert ids(first) + ids(second) == threads[::-1]
    assert "next_after" not in second


async def test_threads_with_the_same_activity_page_by_root_id_descending(
    api: Api, pool: asyncpg.Pool
) -> None:
    room = await open_room(api)
    await insert_threads_at(pool, room.id, room.bob, datetime(2025, 3, 8, 14, 30, tzinfo=UTC), 5)

    pages = [await thread_list(api, room.bob, room.id, limit=2)]
    while "next_after" in pages[-1]:
        pages.append(await thread_list(api, room.bob, room.id, limit=2, after=pages[-1]["next_after"]))

    listed = [root for page in pages for root in ids(page)]
    assert [len(ids(page)) for page in pages] == [2, 2, 1]
    assert listed == sorted(listed, reverse=True) and len(set(listed)) == 5


async def test_the_limit_defaults_to_50_and_is_clamped_to_200(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    await insert_threads_at(pool, room.id, room.bob, datetime(2025, 3, 8, tzinfo=UTC), 201)

    default = await thread_list(api, room.bob, room.id)
    clamped = await thread_list(api, room.bob, room.id, limit=100_000)
    last = await thread_list(api, room.bob, room.id, limit=200, after=clamped["next_after"])

    assert len(default["threads"]) == 50 and "next_after" in default
    assert len(clamped["threads"]) == 200 and "next_after" in clamped
    assert len(last["threads"]) == 1 and "next_after" not in last


async def test_a_malformed_after_is_a_bad_request(api: Api) -> None:
    room = await open_room(api)
    await post_root(api, room.bob, room.id)

    def b64(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()

    for after in (
        "",
        "!!!",
        "é",
        b64("nope"),
        b64("123"),
        b64(f"abc.{uuid7()}"),
        b64("123.not-a-uuid"),
        b64(f"{10**30}.{uuid7()}"),
        b64(f"-{10**30}.{uuid7()}"),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ):
        response = await api.get(f"/api/conversations/{room.id}/threads", room.bob, params={"after": after})
        problem = assert_problem(response, 400, "invalid_request")
        assert [error["field"] for error in problem["details"]["errors"]] == ["after"], after


async def test_a_limit_that_is_not_a_positive_integer_is_a_bad_request(api: Api) -> None:
    room = await open_room(api)

    for limit in ("0", "-3", "ten", "1.0", ""):
        response = await api.get(f"/api/conversations/{room.id}/threads", room.bob, params={"limit": limit})
        problem = assert_problem(response, 400, "invalid_request")
        assert [error["field"] for error in problem["details"]["errors"]] == ["limit"], limit


async def test_query_parameters_are_checked_before_the_membership(api: Api) -> None:
    room = await open_room(api)

    response = await api.get(f"/api/conversations/{room.id}/threads", room.dave, params={"after": "!!!"})

    assert_problem(response, 400, "invalid_request")
