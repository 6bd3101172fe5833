"""``POST /api/presence/heartbeat`` over real HTTP (contract 7.1, 7.2, 1.7): statuses, errors, and the
``presence.update`` events a subscriber on ``tl:conv:<conversation_id>`` receives."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from tests.presence.conftest import Presence, create_conversation, join_announced
from tests.presence.support import Subscriber, presence_events, subscribed
from tests.support.api import Api, Persona
from tests.support.problems import assert_problem
from threadline_shared.dto.base import format_timestamp
from threadline_shared.presence.store import from_ms, to_ms


def seen_at(presence: Presence) -> str:
    """``last_seen_at`` as recorded now: the clock in whole milliseconds (the Redis layout's unit)."""
    return format_timestamp(from_ms(to_ms(presence.clock.now())))


async def test_a_heartbeat_publishes_online_in_each_conversation_of_the_user(
    api: Api, presence: Presence, pool: asyncpg.Pool, redis_url: str
) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    plans = await create_conversation(pool, alice, bob=(bob, "member"))
    trips = await create_conversation(pool, bob)
    unrelated = await create_conversation(pool, alice)

    async with subscribed(redis_url, plans, trips, unrelated) as subscriber:
        response = await presence.heartbeat(bob)
        received = await subscriber.wait_for(2)

    assert response.status_code == 204
    assert response.content == b""
    payload = {"user_id": str(bob.id), "status": "online", "last_seen_at": seen_at(presence)}
    assert sorted(presence_events(received), key=lambda item: str(item[0])) == sorted(
        [(plans, payload), (trips, payload)], key=lambda item: str(item[0])
    )


@pytest.mark.parametrize(
    ("body", "status"),
    [(None, "online"), ({}, "online"), ({"status": None}, "online"), ({"status": "away"}, "away")],
)
async def test_the_status_defaults_to_online(
    api: Api, presence: Presence, pool: asyncpg.Pool, body: Any, status: str
) -> None:
    alice = await api.persona("alice")
    plans = await create_conversation(pool, alice)

    response = await presence.heartbeat(alice, body)

    assert response.status_code == 204
    snapshot = (await presence.snapshot(alice, plans)).json()
    assert snapshot["participants"] == [
        {"user_id": str(alice.id), "status": status, "last_seen_at": seen_at(presence)}
    ]


async def test_only_a_change_of_status_is_published(
    api: Api, presence: Presence, pool: asyncpg.Pool, redis_url: str
) -> None:
    alice = await api.persona("alice")
    plans = await create_conversation(pool, alice)

    async with subscribed(redis_url, plans) as subscriber:
        for body in [None, None, {"status": "away"}, {"status": "away"}, None, {"status": "online"}]:
            assert (await presence.heartbeat(alice, body)).status_code == 204
            presence.clock.advance(5)
        await subscriber.wait_for(3)
        received = await subscriber.quiet(0.2)

    assert [payload["status"] for _, payload in presence_events(received)] == ["online", "away", "online"]


async def test_the_sweeper_publishes_offline_once_after_the_timeout(
    api: Api, presence: Presence, pool: asyncpg.Pool, redis_url: str
) -> None:
    alice = await api.persona("alice")
    plans = await create_conversation(pool, alice)
    await presence.heartbeat(alice, {"status": "away"})
    last_seen = seen_at(presence)

    async with subscribed(redis_url, plans) as subscriber:
        presence.clock.advance(59)
        assert await subscriber.quiet(0.15) == []
        presence.clock.advance(1)
        await subscriber.wait_for(1)
        received = await subscriber.quiet(0.15)

    assert presence_events(received) == [
        (plans, {"user_id": str(alice.id), "status": "offline", "last_seen_at": last_seen})
    ]


async def test_heartbeats_within_the_timeout_never_go_offline(
    api: Api, presence: Presence, pool: asyncpg.Pool, redis_url: str
) -> None:
    alice = await api.persona("alice")
    plans = await create_conversation(pool, alice)
    await presence.heartbeat(alice)

    async with subscribed(redis_url, plans) as subscriber:
        for _ in range(3):
            presence.clock.advance(55)
            await subscriber.quiet(0.06)  # several sweeps run between heartbeats
            assert (await presence.heartbeat(alice)).status_code == 204
        received = await subscriber.quiet(0.1)

    assert received == []


async def toggle_until_published(
    presence: Presence, user: Persona, subscriber: Subscriber
) -> list[tuple[UUID, dict[str, Any]]]:
    """Heartbeats that switch ``user`` between away and online until ``subscriber`` receives an event."""
    status = "away"
    while True:
        await presence.heartbeat(user, {"status": status})
        try:
            return await subscriber.wait_for(1, timeout=0.2)
        except TimeoutError:
            status = "online" if status == "away" else "away"


async def test_a_conversation_joined_later_gets_the_next_transition(
    api: Api, presence: Presence, pool: asyncpg.Pool, redis_url: str
) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    await create_conversation(pool, alice)
    trips = await create_conversation(pool, bob)
    await presence.heartbeat(alice)  # the service now caches alice's conversations (not trips)
    await join_announced(pool, trips, alice.id)

    async with subscribed(redis_url, trips) as subscriber:
        # Well within the cache's 30 s TTL: only the listener's invalidation can make this arrive.
        received = await asyncio.wait_for(toggle_until_published(presence, alice, subscriber), 5)

    assert presence_events(received)[0][1]["user_id"] == str(alice.id)


async def test_a_conversation_created_after_the_creator_was_cached_gets_their_next_transition(
    api: Api, presence: Presence, pool: asyncpg.Pool, redis_url: str
) -> None:
    """Creating a conversation announces nothing (6.5), so the creator's cached conversations miss it; the
    first member who joins it is announced, and that refreshes everyone in the conversation, the creator
    included (7.2: every conversation where the user is a participant)."""
    alice, bob = await api.persona("alice"), await api.persona("bob")
    await create_conversation(pool, alice)
    await presence.heartbeat(alice)  # the service now caches alice's conversations
    trips = await create_conversation(pool, alice)  # alice's, created afterwards: no event
    await join_announced(pool, trips, bob.id)

    async with subscribed(redis_url, trips) as subscriber:
        # Well within the cache's 30 s TTL: only the listener's invalidation can make this arrive.
        received = await asyncio.wait_for(toggle_until_published(presence, alice, subscriber), 5)

    assert presence_events(received)[0][1]["user_id"] == str(alice.id)


@pytest.mark.parametrize("status", ["offline", "busy", "ONLINE", 1])
async def test_other_statuses_are_rejected(api: Api, presence: Presence, status: Any) -> None:
    alice = await api.persona("alice")

    problem = assert_problem(await presence.heartbeat(alice, {"status": status}), 422, "validation_failed")
    assert problem["details"]["errors"][0]["field"] == "status"


async def test_a_body_that_is_not_an_object_is_rejected(api: Api, presence: Presence) -> None:
    alice = await api.persona("alice")

    assert_problem(await presence.heartbeat(alice, ["online"]), 422, "validation_failed")


async def test_malformed_json_is_an_invalid_request(api: Api, presence: Presence) -> None:
    alice = await api.persona("alice")
    headers = {**alice.bearer, "Content-Type": "application/json"}

    response = await presence.http.post("/api/presence/heartbeat", headers=headers, content=b"{")
    assert_problem(response, 400, "invalid_request")


async def test_a_body_that_is_not_json_is_unsupported(api: Api, presence: Presence) -> None:
    alice = await api.persona("alice")
    headers = {**alice.bearer, "Content-Type": "text/plain"}

    response = await presence.http.post("/api/presence/heartbeat", headers=headers, content=b"online")
    assert_problem(response, 415, "unsupported_media_type")


async def test_a_heartbeat_needs_a_session(api: Api, presence: Presence) -> None:
    assert_problem(await presence.http.post("/api/presence/heartbeat"), 401, "RGP.AUTH.MISSING_SESSION")
    response = await presence.http.post("/api/presence/heartbeat", headers={"Authorization": "Bearer nope"})
    assert_problem(response, 401, "RGP.AUTH.INVALID_SESSION")


async def test_authentication_comes_before_the_body(presence: Presence) -> None:
    response = await presence.http.post("/api/presence/heartbeat", json={"status": "busy"})
    assert_problem(response, 401, "RGP.AUTH.MISSING_SESSION")


async def test_cookie_heartbeats_need_the_csrf_header(api: Api, presence: Presence) -> None:
    alice = await api.persona("alice")

    async with presence.browser(alice, csrf=False) as without, presence.browser(alice) as with_csrf:
        refused = await without.post("/api/presence/heartbeat", json={"status": "busy"})
        accepted = await with_csrf.post("/api/presence/heartbeat")

    assert_problem(refused, 403, "RGP.AUTH.CSRF")
    assert accepted.status_code == 204


async def test_a_disabled_user_is_locked_out(api: Api, presence: Presence, pool: asyncpg.Pool) -> None:
    alice = await api.persona("alice")
    await pool.execute("UPDATE users SET disabled_at = now() WHERE id = $1", alice.id)

    assert_problem(await presence.heartbeat(alice), 423, "RGP.AUTH.DISABLED")


async def test_the_heartbeat_route_takes_post_only(api: Api, presence: Presence) -> None:
    alice = await api.persona("alice")

    response = await presence.http.get("/api/presence/heartbeat", headers=alice.bearer)

    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"
