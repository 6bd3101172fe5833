"""The posts' lean path (threadline_api.messages.fastpath, served below ASGI by threadline_api.protocol)
answers exactly like the full application and hands everything but the plain case over to it. Every other
api test that posts with a bearer token runs through it as well."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from tests.support.api import Api, Persona, running_api
from tests.support.messages import insert_chain, last_seq, open_room, post_root, unlimited_api
from tests.support.problems import assert_problem
from threadline_api.messages.fastpath import parse_post, target
from threadline_shared.presence.redis_store import RedisPresenceStore
from threadline_shared.presence.store import TypingKey

FORBIDDEN = "RGP.RBAC.FORBIDDEN"


def fast_posts() -> float:
    return REGISTRY.get_sample_value("threadline_api_fast_posts_total") or 0.0


async def post(api: Api, user: Persona, conversation_id: str) -> httpx.Response:
    return await api.post(f"/api/threads/{conversation_id}/root", user, json={"content": "x"})


@pytest.fixture
async def limitless(
    pool: asyncpg.Pool, redis: Redis, database_url: str, redis_url: str
) -> AsyncIterator[Api]:
    """``redis``: its buckets are emptied after the test, as the ``api`` fixture's are."""
    async with unlimited_api(pool, database_url, redis_url) as api:
        yield api


async def test_a_bearer_post_is_made_by_the_lean_path_with_the_full_paths_answer(api: Api) -> None:
    room = await open_room(api)
    before = fast_posts()
    fast = await api.post(
        f"/api/threads/{room.id}/root", room.bob, json={"content": "fast"}, headers={"X-Request-ID": "post-1"}
    )
    assert fast_posts() == before + 1
    async with room.bob.browser() as browser:  # cookie requests always take the full path
        full = await browser.post(f"/api/threads/{room.id}/root", json={"content": "full"})
    assert fast_posts() == before + 1

    assert (fast.status_code, full.status_code) == (201, 201)
    assert list(fast.headers) == list(full.headers)
    for name, value in full.headers.items():
        if name not in ("date", "x-request-id", "content-length", "ratelimit-remaining", "ratelimit-reset"):
            assert fast.headers[name] == value, name
    assert fast.headers["x-request-id"] == "post-1"
    body = fast.json()
    assert set(body) == set(full.json()) == {"message_id", "root_id", "conversation_id", "depth"}
    assert body["root_id"] == body["message_id"] and body["conversation_id"] == room.id


async def test_a_reply_is_made_by_the_lean_path(api: Api) -> None:
    room = await open_room(api)
    root = await post_root(api, room.alice, room.id)
    before = fast_posts()

    response = await api.post(f"/api/messages/{root}/reply", room.bob, json={"content": "hi", "role": None})

    assert response.status_code == 201 and fast_posts() == before + 1
    body = response.json()
    assert body == {
        "message_id": body["message_id"],
        "root_id": root,
        "conversation_id": room.id,
        "parent_id": root,
        "depth": 2,
    }


async def test_refusals_get_the_full_paths_answer_and_write_nothing(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    root = await post_root(api, room.alice, room.id)
    deepest = (await insert_chain(pool, room.id, room.alice.id, 64))[-1]
    unknown = "0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80"
    seq, before = await last_seq(pool, room.id), fast_posts()

    assert_problem(
        await api.post(f"/api/threads/{room.id}/root", room.dave, json={"content": "x"}), 403, FORBIDDEN
    )
    assert_problem(
        await api.post(f"/api/threads/{room.id}/root", room.carol, json={"content": "x"}), 403, FORBIDDEN
    )
    assert_problem(
        await api.post(f"/api/messages/{unknown}/reply", room.bob, json={"content": "x"}),
        404,
        "RGP.NOT_FOUND",
    )
    assert_problem(
        await api.post(f"/api/messages/{root}/reply", room.dave, json={"content": "x"}), 403, FORBIDDEN
    )
    too_deep = await api.post(f"/api/messages/{deepest}/reply", room.bob, json={"content": "x"})
    assert_problem(too_deep, 422, "validation_failed")
    assert_problem(
        await api.post(f"/api/messages/{root}/reply", room.bob, json={"content": "a\x00"}),
        422,
        "validation_failed",
    )
    assert_problem(
        await api.post("/api/threads/not-a-uuid/root", room.bob, json={"content": "x"}),
        400,
        "invalid_request",
    )

    assert fast_posts() == before
    assert await last_seq(pool, room.id) == seq


async def test_a_session_due_for_its_last_seen_write_goes_the_full_way_once(
    api: Api, pool: asyncpg.Pool
) -> None:
    room = await open_room(api)
    api.clock.advance(31)  # last_seen_at is written at most every 30 s
    before = fast_posts()

    assert (
        await api.post(f"/api/threads/{room.id}/root", room.bob, json={"content": "x"})
    ).status_code == 201
    assert fast_posts() == before, "the full path wrote last_seen_at"
    seen = await pool.fetchval("SELECT last_seen_at FROM sessions WHERE user_id = $1", room.bob.id)
    assert seen == api.clock.now()
    assert (
        await api.post(f"/api/threads/{room.id}/root", room.bob, json={"content": "x"})
    ).status_code == 201
    assert fast_posts() == before + 1


async def test_a_revoked_session_gets_the_full_paths_401(api: Api) -> None:
    room = await open_room(api)
    assert (await api.post("/api/auth/logout", room.bob)).status_code == 200

    refused = await api.post(f"/api/threads/{room.id}/root", room.bob, json={"content": "x"})

    assert_problem(refused, 401, "RGP.AUTH.INVALID_SESSION")


async def test_concurrent_posts_share_batches_and_each_gets_its_own_answer(
    limitless: Api, pool: asyncpg.Pool
) -> None:
    room = await open_room(limitless)
    root = await post_root(limitless, room.alice, room.id)
    before, seq = fast_posts(), await last_seq(pool, room.id)

    answers = await asyncio.gather(
        *(
            limitless.post(
                f"/api/messages/{root}/reply", (room.bob, room.alice)[i % 2], json={"content": str(i)}
            )
            for i in range(40)
        )
    )

    assert [answer.status_code for answer in answers] == [201] * 40
    ids = {answer.json()["message_id"] for answer in answers}
    assert len(ids) == 40
    stored = await pool.fetch("SELECT id, content FROM messages WHERE root_id = $1 AND id <> $1", UUID(root))
    assert {str(row["id"]): row["content"] for row in stored} == {
        answer.json()["message_id"]: str(i) for i, answer in enumerate(answers)
    }
    assert fast_posts() == before + 40
    assert await last_seq(pool, room.id) == seq + 40 * 4  # message.created, thread.activity, 2 unread.update


async def test_a_lean_post_ends_the_authors_typing_in_the_conversation(api: Api, redis: Redis) -> None:
    room = await open_room(api)
    store = RedisPresenceStore(redis)
    conversation = UUID(room.id)
    await store.set_typing(TypingKey(conversation, room.bob.id, None), 10)
    await store.set_typing(TypingKey(conversation, room.alice.id, None), 10)
    before = fast_posts()

    await post_root(api, room.bob, room.id)

    assert fast_posts() == before + 1
    async with asyncio.timeout(10):  # cleared once the post's batch has ended, just after its answer
        while [entry.user_id for entry in await store.typing_in(conversation)] != [room.alice.id]:
            await asyncio.sleep(0.01)


async def test_with_limiting_on_the_posting_limit_still_comes_last(
    pool: asyncpg.Pool, redis: Redis, database_url: str, redis_url: str
) -> None:
    async with running_api(database_url, redis_url) as api:
        room = await open_room(api)
        before = fast_posts()
        for _ in range(10):
            assert (await post(api, room.bob, room.id)).status_code == 201
        assert fast_posts() == before + 10

        refused, viewer = await post(api, room.bob, room.id), await post(api, room.carol, room.id)

    assert_problem(refused, 429, "RGP.RATE_LIMITED")
    assert refused.headers["x-ratelimit-profile"] == "conversation.post"
    assert_problem(viewer, 403, FORBIDDEN)
    assert fast_posts() == before + 10


@pytest.mark.parametrize(
    ("body", "parsed"),
    [
        (b'{"content":"hi"}', ("hi", "user")),
        (b'{"content":"hi","role":"assistant","extra":1}', ("hi", "assistant")),
        (b'{"content":"hi","role":null}', ("hi", "user")),
        (b'{"content":""}', None),
        (b'{"content":"a\\u0000b"}', None),
        (b'{"content":1}', None),
        (b'["hi"]', None),
        (b"{", None),
        (b"", None),
    ],
)
def test_only_bodies_the_route_accepts_are_taken(body: bytes, parsed: tuple[str, str] | None) -> None:
    assert parse_post(body, is_root=True) == parsed


def test_only_post_paths_with_valid_ids_are_taken() -> None:
    some = "0193A5B2-7C1E-7D3A-9F21-3B4C5D6E7F80"
    assert target({"path": f"/api/threads/{some}/root"}) == (UUID(some), None)
    assert target({"path": f"/api/messages/{some}/reply"}) == (None, UUID(some))
    assert target({"path": "/api/threads/x/root"}) is None
    assert target({"path": f"/api/threads/{some}/tree"}) is None
    assert target({"path": f"/api/messages/{some}/reply/more"}) is None


async def test_a_post_that_fails_in_the_database_is_answered_500_once_not_tried_again(
    pool: asyncpg.Pool, redis: Redis, database_url: str, redis_url: str
) -> None:
    """A post whose statement failed may have committed (a lost connection): the lean path answers it as the
    full application would (500) instead of handing it on to be made a second time. (Its batch's transaction
    failed first, with an error that says it rolled back: then the post was made on its own.)"""
    calls: list[str] = []

    def observe(record: Any) -> None:
        if "tl_post_message" in record.query:
            calls.append(record.query)

    async with running_api(database_url, redis_url, query_observer=observe) as api:
        room = await open_room(api)
        counts = "(uuid, uuid, uuid, timestamptz, bigint, integer)"  # tl_unread_after_post: in the post
        await pool.execute(f"ALTER FUNCTION tl_unread_after_post{counts} RENAME TO tl_gone")
        try:
            failed = await api.post(f"/api/threads/{room.id}/root", room.bob, json={"content": "x"})
        finally:
            await pool.execute(f"ALTER FUNCTION tl_gone{counts} RENAME TO tl_unread_after_post")
        await asyncio.sleep(0)  # asyncpg hands records to observers with call_soon

    assert_problem(failed, 500, "RGP.INTERNAL")
    assert failed.headers["x-content-type-options"] == "nosniff" and failed.headers["x-request-id"]
    assert [call.split("(")[0] for call in calls] == [
        "SELECT * FROM tl_post_messages",
        "SELECT * FROM tl_post_message",
    ]


async def test_a_post_waiting_for_its_threads_lock_holds_back_no_other_post(
    limitless: Api, pool: asyncpg.Pool
) -> None:
    room = await open_room(limitless)
    busy, quiet = (
        await post_root(limitless, room.alice, room.id),
        await post_root(limitless, room.alice, room.id),
    )

    async with pool.acquire() as holder, holder.transaction():
        await holder.execute("SELECT 1 FROM threads WHERE root_id = $1 FOR UPDATE", UUID(busy))
        waiting = asyncio.create_task(
            limitless.post(f"/api/messages/{busy}/reply", room.bob, json={"content": "waits"})
        )
        await asyncio.sleep(0.05)  # in the same batch or the next: either way it waits for the lock
        answered = await limitless.post(f"/api/messages/{quiet}/reply", room.bob, json={"content": "goes"})
        assert answered.status_code == 201
        assert not waiting.done()

    assert (await waiting).status_code == 201
