"""``POST /api/typing`` over real HTTP (contract 7.3, 4.5, 1.7): checks in order, the clamp, and the
``typing.update`` events on ``tl:conv:<conversation_id>`` (start, refresh, stop, expiry)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import uuid4

import asyncpg
import pytest

from tests.presence.conftest import Presence, create_conversation, leave, post_reply, post_root
from tests.presence.support import subscribed, typing_events
from tests.support.api import Api
from tests.support.problems import assert_problem
from threadline_shared.dto.base import format_timestamp
from threadline_shared.presence.store import from_ms, to_ms

DROP = object()


def at(presence: Presence, seconds: float = 0) -> str:
    """The clock (in whole milliseconds, the Redis layout's unit) plus ``seconds``, as a timestamp."""
    return format_timestamp(from_ms(to_ms(presence.clock.now())) + timedelta(seconds=seconds))


@pytest.mark.parametrize("role", ["owner", "admin", "member"])
async def test_writers_may_type(
    api: Api, presence: Presence, pool: asyncpg.Pool, redis_url: str, role: str
) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    if role == "owner":
        plans = await create_conversation(pool, bob)
    else:
        plans = await create_conversation(pool, alice, bob=(bob, role))

    async with subscribed(redis_url, plans) as subscriber:
        response = await presence.typing(bob, plans, 5)
        received = await subscriber.wait_for(1)

    assert response.status_code == 204
    assert response.content == b""
    assert typing_events(received) == [
        (plans, {"conversation_id": str(plans), "user_id": str(bob.id), "expires_at": at(presence, 5)})
    ]


async def test_typing_a_reply_names_the_root(
    api: Api, presence: Presence, pool: asyncpg.Pool, redis_url: str
) -> None:
    alice = await api.persona("alice")
    plans = await create_conversation(pool, alice)
    root = await post_root(pool, plans, alice)

    async with subscribed(redis_url, plans) as subscriber:
        assert (await presence.typing(alice, plans, 3, root)).status_code == 204
        [(_, payload)] = typing_events(await subscriber.wait_for(1))

    assert payload["root_id"] == str(root)
    assert payload["expires_at"] == at(presence, 3)


async def test_a_deleted_root_is_still_a_root(api: Api, presence: Presence, pool: asyncpg.Pool) -> None:
    alice = await api.persona("alice")
    plans = await create_conversation(pool, alice)
    root = await post_root(pool, plans, alice)
    await pool.execute("UPDATE messages SET deleted_at = now() WHERE id = $1", root)

    assert (await presence.typing(alice, plans, 3, root)).status_code == 204


async def test_refresh_start_stop_and_expiry_each_publish_one_event(
    api: Api, presence: Presence, pool: asyncpg.Pool, redis_url: str
) -> None:
    alice = await api.persona("alice")
    plans = await create_conversation(pool, alice)

    async with subscribed(redis_url, plans) as subscriber:
        await presence.typing(alice, plans, 5)
        started_until = at(presence, 5)
        presence.clock.advance(2)
        await presence.typing(alice, plans, 5)  # refresh: one event, the new expiry, no stop
        refreshed_until = at(presence, 5)
        await subscriber.wait_for(2)
        presence.clock.advance(4)
        assert len(await subscriber.quiet(0.1)) == 2  # not expired yet: the refresh moved the expiry
        presence.clock.advance(1)
        await subscriber.wait_for(3)
        expired_at = at(presence)
        await presence.typing(alice, plans, 0)  # stop without an entry: still a stop
        stopped_at = at(presence)
        await subscriber.wait_for(4)
        received = await subscriber.quiet(0.1)

    expiries = [payload["expires_at"] for _, payload in typing_events(received)]
    assert expiries == [started_until, refreshed_until, expired_at, stopped_at]


async def test_seconds_zero_stops_now(
    api: Api, presence: Presence, pool: asyncpg.Pool, redis_url: str
) -> None:
    alice = await api.persona("alice")
    plans = await create_conversation(pool, alice)
    await presence.typing(alice, plans, 30)
    presence.clock.advance(1)

    async with subscribed(redis_url, plans) as subscriber:
        assert (await presence.typing(alice, plans, 0)).status_code == 204
        [(_, payload)] = typing_events(await subscriber.wait_for(1))

    assert payload["expires_at"] == at(presence)
    assert (await presence.snapshot(alice, plans)).json()["typing"] == []


@pytest.mark.parametrize(("seconds", "lasts"), [(31, 30), (3600, 30), (-5, 0), (2**64, 30), (-(10**30), 0)])
async def test_seconds_are_clamped(
    api: Api, presence: Presence, pool: asyncpg.Pool, redis_url: str, seconds: int, lasts: int
) -> None:
    alice = await api.persona("alice")
    plans = await create_conversation(pool, alice)

    async with subscribed(redis_url, plans) as subscriber:
        assert (await presence.typing(alice, plans, seconds)).status_code == 204
        [(_, payload)] = typing_events(await subscriber.wait_for(1))

    assert payload["expires_at"] == at(presence, lasts)


async def test_a_deeply_nested_body_with_a_long_number_is_read_as_orjson_reads_it(
    api: Api, presence: Presence, pool: asyncpg.Pool
) -> None:
    """Nested deeper than the standard library's parser can go (orjson allows 1,024 levels), with a number
    that makes the body be read again for its integers: the body is read as orjson read it, not a 500."""
    alice = await api.persona("alice")
    plans = await create_conversation(pool, alice)
    extra = "[" * 1000 + "12345678901234567890123" + "]" * 1000
    body = f'{{"conversation_id": "{plans}", "seconds": 5, "extra": {extra}}}'

    response = await presence.http.post(
        "/api/typing", content=body, headers={**alice.bearer, "content-type": "application/json"}
    )

    assert response.status_code == 204


async def test_viewers_cannot_type(api: Api, presence: Presence, pool: asyncpg.Pool) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    plans = await create_conversation(pool, alice, bob=(bob, "viewer"))

    assert_problem(await presence.typing(bob, plans, 5), 403, "RGP.RBAC.FORBIDDEN")


async def test_non_participants_and_unknown_conversations_are_forbidden(
    api: Api, presence: Presence, pool: asyncpg.Pool
) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    plans = await create_conversation(pool, alice)

    assert_problem(await presence.typing(bob, plans, 5), 403, "RGP.RBAC.FORBIDDEN")
    assert_problem(await presence.typing(bob, uuid4(), 5), 403, "RGP.RBAC.FORBIDDEN")


async def test_a_participant_who_left_is_forbidden(api: Api, presence: Presence, pool: asyncpg.Pool) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    plans = await create_conversation(pool, alice, bob=(bob, "member"))
    await leave(pool, plans, bob)

    assert_problem(await presence.typing(bob, plans, 5), 403, "RGP.RBAC.FORBIDDEN")


async def test_the_root_must_be_a_root_of_that_conversation(
    api: Api, presence: Presence, pool: asyncpg.Pool
) -> None:
    alice = await api.persona("alice")
    plans = await create_conversation(pool, alice)
    trips = await create_conversation(pool, alice)
    elsewhere = await post_root(pool, trips, alice)
    root = await post_root(pool, plans, alice)
    reply = await post_reply(pool, root, alice)

    for not_a_root in (elsewhere, reply, uuid4()):
        assert_problem(await presence.typing(alice, plans, 5, not_a_root), 404, "RGP.NOT_FOUND")


async def test_forbidden_comes_before_an_unknown_root(
    api: Api, presence: Presence, pool: asyncpg.Pool
) -> None:
    alice, bob, carol = await api.persona("alice"), await api.persona("bob"), await api.persona("carol")
    plans = await create_conversation(pool, alice, bob=(bob, "viewer"))

    assert_problem(await presence.typing(bob, plans, 5, uuid4()), 403, "RGP.RBAC.FORBIDDEN")
    assert_problem(await presence.typing(carol, plans, 5, uuid4()), 403, "RGP.RBAC.FORBIDDEN")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"conversation_id": DROP}, "conversation_id"),
        ({"conversation_id": None}, "conversation_id"),
        ({"conversation_id": "not-a-uuid", "seconds": 5}, "conversation_id"),
        ({"conversation_id": "7d9f1c2e4b3a4f6e9a1b2c3d4e5f6a7b", "seconds": 5}, "conversation_id"),
        ({"seconds": 2.5}, "seconds"),
        ({"seconds": "2"}, "seconds"),
        ({"seconds": True}, "seconds"),
        ({"seconds": DROP}, "seconds"),
        ({"seconds": None}, "seconds"),
        ({"root_id": "nope", "seconds": 1}, "root_id"),
    ],
)
async def test_a_body_that_does_not_fit_is_rejected_before_membership(
    api: Api, presence: Presence, pool: asyncpg.Pool, body: dict[str, Any], field: str
) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    plans = await create_conversation(pool, alice)  # bob is not in it: 422 still wins over 403
    body = {key: value for key, value in {"conversation_id": str(plans), "seconds": 5, **body}.items()
            if value is not DROP}  # fmt: skip

    response = await presence.http.post("/api/typing", headers=bob.bearer, json=body)

    problem = assert_problem(response, 422, "validation_failed")
    assert field in [error["field"] for error in problem["details"]["errors"]]


async def test_an_upper_case_conversation_id_is_accepted(
    api: Api, presence: Presence, pool: asyncpg.Pool
) -> None:
    alice = await api.persona("alice")
    plans = await create_conversation(pool, alice)
    body = {"conversation_id": str(plans).upper(), "seconds": 1}

    assert (await presence.http.post("/api/typing", headers=alice.bearer, json=body)).status_code == 204


async def test_typing_needs_a_session_and_csrf_for_cookies(
    api: Api, presence: Presence, pool: asyncpg.Pool
) -> None:
    alice = await api.persona("alice")
    plans = await create_conversation(pool, alice)
    body = {"conversation_id": str(plans), "seconds": 5}

    assert_problem(await presence.http.post("/api/typing", json=body), 401, "RGP.AUTH.MISSING_SESSION")
    async with presence.browser(alice, csrf=False) as without, presence.browser(alice) as with_csrf:
        assert_problem(await without.post("/api/typing", json=body), 403, "RGP.AUTH.CSRF")
        assert (await with_csrf.post("/api/typing", json=body)).status_code == 204


async def test_entries_of_different_roots_are_separate(
    api: Api, presence: Presence, pool: asyncpg.Pool
) -> None:
    alice = await api.persona("alice")
    plans = await create_conversation(pool, alice)
    root = await post_root(pool, plans, alice)
    await presence.typing(alice, plans, 9)
    await presence.typing(alice, plans, 4, root)
    await presence.typing(alice, plans, 0, root)

    typing = (await presence.snapshot(alice, plans)).json()["typing"]

    assert typing == [
        {"conversation_id": str(plans), "user_id": str(alice.id), "expires_at": at(presence, 9)}
    ]


async def test_posting_through_the_api_stops_the_authors_typing(
    api: Api, presence: Presence, pool: asyncpg.Pool, redis_url: str
) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    plans = await create_conversation(pool, alice, bob=(bob, "member"))
    root = await post_root(pool, plans, alice)
    await presence.typing(alice, plans, 20)
    await presence.typing(alice, plans, 20, root)
    await presence.typing(bob, plans, 20)

    async with subscribed(redis_url, plans) as subscriber:
        posted = await api.post(f"/api/messages/{root}/reply", alice, json={"content": "done typing"})
        assert posted.status_code == 201, posted.text
        await subscriber.wait_for(2)
        received = await subscriber.quiet(0.1)

    stops = typing_events(received)
    assert sorted(payload.get("root_id", "") for _, payload in stops) == sorted(["", str(root)])
    assert {payload["user_id"] for _, payload in stops} == {str(alice.id)}
    typing = (await presence.snapshot(bob, plans)).json()["typing"]
    assert [entry["user_id"] for entry in typing] == [str(bob.id)]
