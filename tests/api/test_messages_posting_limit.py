"""The posting limit (contract 8.4-8.7): GCRA per (user, conversation) with the ``conversation.post`` profile
(5 per second, burst 10), checked after every other check of the root and reply routes; a denied post
creates nothing. The api's fake clock drives the buckets."""

from __future__ import annotations

import asyncpg
import httpx
from redis.asyncio import Redis

from tests.support.api import Api, Persona, running_api
from tests.support.conversations import add_participant, create_conversation
from tests.support.messages import last_seq, open_room, post_root
from tests.support.problems import assert_problem


async def post(api: Api, user: Persona, conversation_id: str, **body: object) -> httpx.Response:
    return await api.post(f"/api/threads/{conversation_id}/root", user, json={"content": "hi", **body})


async def use_up(api: Api, user: Persona, conversation_id: str) -> None:
    """The ten posts of a full bucket."""
    for _ in range(10):
        assert (await post(api, user, conversation_id)).status_code == 201


async def test_the_eleventh_immediate_post_is_refused_with_the_buckets_headers(api: Api) -> None:
    room = await open_room(api)
    await use_up(api, room.bob, room.id)

    refused = await post(api, room.bob, room.id)

    problem = assert_problem(refused, 429, "RGP.RATE_LIMITED")
    assert problem["message"] == "message rate limit exceeded"
    assert problem["details"] == {"retry_after_seconds": 1}
    names = (
        "retry-after",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "x-ratelimit-profile",
    )
    assert {name: refused.headers.get(name) for name in names} == {
        "retry-after": "1",
        "ratelimit-limit": "10",
        "ratelimit-remaining": "0",
        "ratelimit-reset": "2",
        "x-ratelimit-profile": "conversation.post",
    }


async def test_a_refused_post_creates_nothing(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api, assistant_replies=True)
    root = await post_root(api, room.bob, room.id)
    for _ in range(9):
        assert (await post(api, room.bob, room.id)).status_code == 201
    counts = "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM assistant_jobs)"
    before, seq = await pool.fetchrow(counts), await last_seq(pool, room.id)

    as_root = await post(api, room.bob, room.id)
    as_reply = await api.post(f"/api/messages/{root}/reply", room.bob, json={"content": "hi"})

    assert_problem(as_root, 429, "RGP.RATE_LIMITED")
    assert_problem(as_reply, 429, "RGP.RATE_LIMITED")
    assert await pool.fetchrow(counts) == before and await last_seq(pool, room.id) == seq


async def test_roots_and_replies_share_one_bucket(api: Api) -> None:
    room = await open_room(api)
    root = await post_root(api, room.bob, room.id)
    for _ in range(9):
        response = await api.post(f"/api/messages/{root}/reply", room.bob, json={"content": "hi"})
        assert response.status_code == 201

    assert_problem(await post(api, room.bob, room.id), 429, "RGP.RATE_LIMITED")


async def test_other_users_and_other_conversations_have_their_own_buckets(api: Api) -> None:
    room = await open_room(api)
    elsewhere = await create_conversation(api, room.bob, "Elsewhere")
    await use_up(api, room.bob, room.id)

    assert (await post(api, room.bob, elsewhere)).status_code == 201
    assert (await post(api, room.alice, room.id)).status_code == 201
    assert_problem(await post(api, room.bob, room.id), 429, "RGP.RATE_LIMITED")


async def test_the_bucket_refills_at_five_posts_per_second(api: Api) -> None:
    room = await open_room(api)
    await use_up(api, room.bob, room.id)

    api.clock.advance(0.2)
    allowed = await post(api, room.bob, room.id)
    refused = await post(api, room.bob, room.id)

    assert allowed.status_code == 201
    assert_problem(refused, 429, "RGP.RATE_LIMITED")


async def test_the_posting_limit_is_checked_after_every_other_check(api: Api) -> None:
    room = await open_room(api)
    await use_up(api, room.bob, room.id)
    unknown = "0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80"

    assert_problem(await post(api, room.bob, room.id, content=" "), 422, "validation_failed")
    response = await api.post(f"/api/messages/{unknown}/reply", room.bob, json={"content": "hi"})
    assert_problem(response, 404, "RGP.NOT_FOUND")
    await add_participant(api, room.alice, room.id, room.bob, "viewer")
    assert_problem(await post(api, room.bob, room.id), 403, "RGP.RBAC.FORBIDDEN")


async def test_refused_requests_do_not_use_up_posts(api: Api) -> None:
    room = await open_room(api)
    for _ in range(5):
        assert_problem(await post(api, room.bob, room.id, content=""), 422, "validation_failed")
        assert_problem(await post(api, room.carol, room.id), 403, "RGP.RBAC.FORBIDDEN")

    await use_up(api, room.bob, room.id)
    await add_participant(api, room.alice, room.id, room.carol)
    await use_up(api, room.carol, room.id)


async def test_a_raised_profile_applies_to_an_api_started_after_the_change(
    pool: asyncpg.Pool, redis: Redis, database_url: str, redis_url: str
) -> None:
    await pool.execute(
        """
        UPDATE rate_limit_profiles SET params = '{"requests_per_second": 1, "burst": 12}'
        WHERE name = 'conversation.post'
        """
    )
    async with running_api(database_url, redis_url) as api:
        room = await open_room(api)
        for _ in range(12):
            assert (await post(api, room.bob, room.id)).status_code == 201
        refused = await post(api, room.bob, room.id)

    assert_problem(refused, 429, "RGP.RATE_LIMITED")
    assert refused.headers["ratelimit-limit"] == "12" and refused.headers["retry-after"] == "1"


async def test_without_the_profile_the_built_in_limit_applies(
    pool: asyncpg.Pool, redis: Redis, database_url: str, redis_url: str
) -> None:
    await pool.execute("DELETE FROM rate_limit_profiles WHERE name = 'conversation.post'")
    async with running_api(database_url, redis_url) as api:
        room = await open_room(api)
        await use_up(api, room.bob, room.id)
        refused = await post(api, room.bob, room.id)

    assert_problem(refused, 429, "RGP.RATE_LIMITED")
    assert refused.headers["ratelimit-limit"] == "10"
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE author_user_id = $1", room.bob.id) == 10
