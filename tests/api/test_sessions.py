"""Session lifetimes with a controlled clock (contract 3.5, 3.8): idle and absolute deadlines, implicit
rotation at half the idle window for cookie clients only, exactly one rotation under concurrency, disabled
users."""

from __future__ import annotations

import asyncio

import asyncpg

from tests.support.api import Api
from tests.support.problems import assert_problem

HOUR = 3600


async def test_use_does_not_extend_the_idle_deadline(api: Api, pool: asyncpg.Pool) -> None:
    alice = await api.persona("alice")
    for _ in range(7):
        api.clock.advance(HOUR)
        assert (await api.get("/api/auth/me", alice)).status_code == 200
    api.clock.advance(HOUR)

    assert_problem(await api.get("/api/auth/me", alice), 401, "RGP.AUTH.EXPIRED")
    assert await pool.fetchval("SELECT revoked_reason FROM sessions") == "idle_expired"
    assert_problem(await api.get("/api/auth/me", alice), 401, "RGP.AUTH.INVALID_SESSION")


async def test_the_absolute_deadline_ends_a_refreshed_session(api: Api, pool: asyncpg.Pool) -> None:
    alice = await api.persona("alice")
    token = alice.token
    for _ in range(23):
        api.clock.advance(7 * HOUR)
        response = await api.http.post("/api/auth/refresh", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
        token = response.json()["session_token"]
    session = response.json()["session"]
    # refreshed at 161 h: the idle deadline is capped by the absolute one (168 h)
    assert session["expires_at"] == session["absolute_expires_at"]
    api.clock.advance(7 * HOUR)

    bearer = {"Authorization": f"Bearer {token}"}
    assert_problem(await api.http.get("/api/auth/me", headers=bearer), 401, "RGP.AUTH.EXPIRED")
    reasons = [
        r["revoked_reason"]
        for r in await pool.fetch("SELECT revoked_reason FROM sessions ORDER BY issued_at")
    ]
    assert reasons == ["refresh"] * 23 + ["absolute_expired"]


async def test_a_cookie_request_in_the_second_half_of_the_idle_window_rotates(api: Api) -> None:
    alice = await api.persona("alice")
    api.clock.advance(4 * HOUR - 1)
    async with alice.browser() as browser:
        early = await browser.get("/api/auth/me")
        assert "x-session-rotated" not in early.headers
        api.clock.advance(1)
        rotated = await browser.get("/api/auth/me")

    assert rotated.status_code == 200
    assert rotated.headers["x-session-rotated"] == "1"
    names = sorted(value.split("=", 1)[0] for value in rotated.headers.get_list("set-cookie"))
    assert names == ["CSRF-TOKEN", "SESSION_ID"]
    assert rotated.json()["session"]["id"] != early.json()["session"]["id"]
    assert rotated.json()["session"]["absolute_expires_at"] == early.json()["session"]["absolute_expires_at"]
    assert_problem(await api.get("/api/auth/me", alice), 401, "RGP.AUTH.INVALID_SESSION")
    new_session = rotated.cookies["SESSION_ID"]
    assert (
        await api.http.get("/api/auth/me", headers={"Authorization": f"Bearer {new_session}"})
    ).status_code == 200


async def test_a_rotating_request_that_fails_still_hands_over_the_new_session(api: Api) -> None:
    """The old token stops working when the request rotates it (3.5), so the response carries the new
    cookies whatever its status: a 404 (the handler's), a 403 (CSRF) or a 422 (the body) would otherwise log
    the browser out."""
    alice = await api.persona("alice")
    missing = "/api/conversations/7d9f1c2e-4b3a-4f6e-9a1b-2c3d4e5f6a7b"
    for attempt, request in enumerate(
        (
            lambda browser: browser.get(missing),
            lambda browser: browser.post("/api/conversations", json={}, headers={"X-CSRF-Token": "wrong"}),
            lambda browser: browser.post("/api/conversations", json={"title": 5}),
        )
    ):
        api.clock.advance(4 * HOUR)
        async with alice.browser() as browser:
            failed = await request(browser)
            assert failed.status_code in (403, 404, 422), (attempt, failed.text)
            assert failed.headers["x-session-rotated"] == "1", attempt
            names = sorted(value.split("=", 1)[0] for value in failed.headers.get_list("set-cookie"))
            assert names == ["CSRF-TOKEN", "SESSION_ID"], attempt
            alice.token, alice.csrf_token = failed.cookies["SESSION_ID"], failed.cookies["CSRF-TOKEN"]
        assert (await api.get("/api/auth/me", alice)).status_code == 200, attempt


async def test_bearer_requests_never_rotate_implicitly(api: Api) -> None:
    alice = await api.persona("alice")
    api.clock.advance(7 * HOUR)
    response = await api.get("/api/auth/me", alice)
    assert response.status_code == 200
    assert "x-session-rotated" not in response.headers
    assert "set-cookie" not in response.headers


async def test_concurrent_requests_rotate_exactly_once(api: Api, pool: asyncpg.Pool) -> None:
    alice = await api.persona("alice")
    api.clock.advance(5 * HOUR)
    async with alice.browser() as browser:
        responses = await asyncio.gather(*(browser.get("/api/auth/me") for _ in range(8)))

    assert [r.status_code for r in responses] == [200] * 8
    assert sum(1 for r in responses if r.headers.get("x-session-rotated") == "1") == 1
    assert await pool.fetchval("SELECT count(*) FROM sessions WHERE revoked_reason = 'rotated'") == 1
    assert await pool.fetchval("SELECT count(*) FROM sessions WHERE successor_id IS NOT NULL") == 1


async def test_a_disabled_user_is_refused_and_their_session_revoked(api: Api, pool: asyncpg.Pool) -> None:
    await api.persona("alice")
    bob = await api.persona("bob")
    await pool.execute("UPDATE users SET disabled_at = now() WHERE id = $1", bob.id)

    assert_problem(await api.get("/api/auth/me", bob), 423, "RGP.AUTH.DISABLED")
    assert (
        await pool.fetchval("SELECT revoked_reason FROM sessions WHERE user_id = $1", bob.id)
        == "user_disabled"
    )
    assert_problem(await api.post("/api/auth/refresh", bob), 401, "RGP.AUTH.INVALID_SESSION")


async def test_roles_are_read_fresh_on_every_request(api: Api, pool: asyncpg.Pool) -> None:
    await api.persona("alice")
    bob = await api.persona("bob")
    await pool.execute("UPDATE users SET roles = ARRAY['admin', 'member'] WHERE id = $1", bob.id)
    me = await api.get("/api/auth/me", bob)
    assert me.json()["user"]["roles"] == ["admin", "member"]
