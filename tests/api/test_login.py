"""Login, refresh, logout, me and cookies (contract 3.4-3.7)."""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime

import asyncpg
import httpx
import pytest

from tests.support.api import PASSWORD, Api
from tests.support.problems import assert_problem


def cookies_of(response: httpx.Response) -> dict[str, str]:
    """name -> the whole Set-Cookie value."""
    return {value.split("=", 1)[0]: value for value in response.headers.get_list("set-cookie")}


@pytest.mark.parametrize("identifier", ["bob", "BOB", "bob@example.com", "Bob@Example.COM"])
async def test_login_by_username_or_email_ignoring_case(api: Api, identifier: str) -> None:
    await api.persona("alice")
    bob = await api.persona("bob")
    response = await api.login(identifier)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"] == {
        "id": str(bob.id),
        "email": "bob@example.com",
        "username": "bob",
        "display_name": "Bob",
        "roles": ["member"],
    }
    assert set(body["session"]) == {"id", "issued_at", "expires_at", "absolute_expires_at"}
    assert len(body["session_token"]) == 43
    assert len(body["csrf_token"]) == 22


async def test_login_sets_both_cookies_with_the_contract_attributes(api: Api) -> None:
    await api.persona("alice")
    response = await api.login("alice")
    body = response.json()
    expires_at = datetime.fromisoformat(body["session"]["expires_at"])
    max_age = round((expires_at - api.clock.now()).total_seconds())
    expires = format_datetime(expires_at, usegmt=True)

    cookies = cookies_of(response)
    assert cookies["SESSION_ID"] == (
        f"SESSION_ID={body['session_token']}; Path=/; HttpOnly; SameSite=Lax; "
        f"Max-Age={max_age}; Expires={expires}"
    )
    assert cookies["CSRF-TOKEN"] == (
        f"CSRF-TOKEN={body['csrf_token']}; Path=/; SameSite=Strict; Max-Age={max_age}; Expires={expires}"
    )
    assert max_age == 8 * 3600


async def test_session_windows_at_login(api: Api) -> None:
    await api.persona("alice")
    session = (await api.login("alice")).json()["session"]
    issued = datetime.fromisoformat(session["issued_at"])

    assert (datetime.fromisoformat(session["expires_at"]) - issued).total_seconds() == 8 * 3600
    assert (datetime.fromisoformat(session["absolute_expires_at"]) - issued).total_seconds() == 7 * 24 * 3600
    assert session["issued_at"].endswith("Z")


@pytest.mark.parametrize(("identifier", "password"), [("alice", "wrong password"), ("nobody", PASSWORD)])
async def test_unknown_user_and_wrong_password_get_the_same_answer(
    api: Api, identifier: str, password: str
) -> None:
    await api.persona("alice")
    problem = assert_problem(await api.login(identifier, password), 401, "RGP.AUTH.INVALID_CREDENTIALS")
    assert problem["message"] == "invalid credentials"


@pytest.mark.parametrize(
    "body", [{"email": "  ", "password": PASSWORD}, {"email": "alice"}, {"password": "x"}]
)
async def test_login_validates_its_body(api: Api, body: dict[str, str]) -> None:
    await api.persona("alice")
    assert_problem(await api.http.post("/api/auth/login", json=body), 422, "validation_failed")


async def test_a_disabled_user_cannot_log_in(api: Api, pool: asyncpg.Pool) -> None:
    await api.persona("alice")
    await api.persona("bob")
    await pool.execute("UPDATE users SET disabled_at = now() WHERE username = 'bob'")

    assert_problem(await api.login("bob"), 423, "RGP.AUTH.DISABLED")
    assert_problem(await api.login("bob", "wrong password"), 401, "RGP.AUTH.INVALID_CREDENTIALS")


async def test_me_with_bearer_and_with_cookie(api: Api) -> None:
    alice = await api.persona("alice")
    by_bearer = await api.get("/api/auth/me", alice)
    async with alice.browser() as browser:
        by_cookie = await browser.get("/api/auth/me")

    assert by_bearer.status_code == 200
    assert by_bearer.json() == by_cookie.json()
    assert by_bearer.json()["user"]["username"] == "alice"
    assert "session_token" not in by_bearer.json()


async def test_a_bearer_token_wins_over_the_cookie(api: Api) -> None:
    await api.persona("alice")
    bob = await api.persona("bob")
    alice = api.personas["alice"]
    async with alice.browser() as browser:
        response = await browser.get("/api/auth/me", headers=bob.bearer)
    assert response.json()["user"]["username"] == "bob"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "RGP.AUTH.MISSING_SESSION"),
        ({"Authorization": "Basic YWxpY2U6eA=="}, "RGP.AUTH.MISSING_SESSION"),
        ({"Authorization": "Bearer not-a-real-token"}, "RGP.AUTH.INVALID_SESSION"),
    ],
)
async def test_protected_routes_need_a_valid_session(api: Api, headers: dict[str, str], code: str) -> None:
    assert_problem(await api.http.get("/api/auth/me", headers=headers), 401, code)


async def test_refresh_rotates_and_the_old_token_stops_working(api: Api) -> None:
    alice = await api.persona("alice")
    before = (await api.get("/api/auth/me", alice)).json()["session"]
    api.clock.advance(60)

    refreshed = await api.post("/api/auth/refresh", alice)

    assert refreshed.status_code == 200
    assert refreshed.headers["x-session-rotated"] == "1"
    assert set(cookies_of(refreshed)) == {"SESSION_ID", "CSRF-TOKEN"}
    body = refreshed.json()
    assert body["session"]["id"] != before["id"]
    assert body["session"]["absolute_expires_at"] == before["absolute_expires_at"]
    assert body["session"]["issued_at"] > before["issued_at"]
    assert_problem(await api.get("/api/auth/me", alice), 401, "RGP.AUTH.INVALID_SESSION")
    new_token = {"Authorization": f"Bearer {body['session_token']}"}
    assert (await api.http.get("/api/auth/me", headers=new_token)).status_code == 200


async def test_refresh_reads_the_cookie_and_needs_no_csrf(api: Api) -> None:
    alice = await api.persona("alice")
    async with alice.browser(csrf=False) as browser:
        response = await browser.post("/api/auth/refresh")
    assert response.status_code == 200
    assert response.headers["x-session-rotated"] == "1"


@pytest.mark.parametrize("path", ["/api/auth/refresh", "/api/auth/logout"])
async def test_refresh_and_logout_report_missing_and_unknown_tokens(api: Api, path: str) -> None:
    assert_problem(await api.http.post(path), 401, "RGP.AUTH.MISSING_SESSION")
    unknown = {"Authorization": "Bearer " + "A" * 43}
    assert_problem(await api.http.post(path, headers=unknown), 401, "RGP.AUTH.INVALID_SESSION")


async def test_refresh_after_the_idle_deadline_is_expired(api: Api) -> None:
    alice = await api.persona("alice")
    api.clock.advance(8 * 3600)
    assert_problem(await api.post("/api/auth/refresh", alice), 401, "RGP.AUTH.EXPIRED")


async def test_logout_revokes_and_clears_both_cookies(api: Api, pool: asyncpg.Pool) -> None:
    alice = await api.persona("alice")
    async with alice.browser(csrf=False) as browser:
        response = await browser.post("/api/auth/logout")

    assert response.status_code == 200
    assert response.json() == {"ok": True}
    cookies = cookies_of(response)
    epoch = "Expires=Thu, 01 Jan 1970 00:00:00 GMT"
    assert cookies["SESSION_ID"] == f"SESSION_ID=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0; {epoch}"
    assert cookies["CSRF-TOKEN"] == f"CSRF-TOKEN=; Path=/; SameSite=Strict; Max-Age=0; {epoch}"
    assert_problem(await api.get("/api/auth/me", alice), 401, "RGP.AUTH.INVALID_SESSION")
    reason = await pool.fetchval("SELECT revoked_reason FROM sessions ORDER BY issued_at LIMIT 1")
    assert reason == "logout"


async def test_the_oldest_sessions_beyond_the_limit_are_revoked(api: Api, pool: asyncpg.Pool) -> None:
    await api.persona("alice")
    tokens = []
    for _ in range(6):
        api.clock.advance(1)
        tokens.append((await api.login("alice")).json()["session_token"])

    statuses = [
        (await api.http.get("/api/auth/me", headers={"Authorization": f"Bearer {t}"})).status_code
        for t in tokens
    ]
    # the persona's own login plus these six: the two oldest are evicted
    assert statuses == [401, 200, 200, 200, 200, 200]
    reasons = await pool.fetch("SELECT revoked_reason FROM sessions WHERE revoked_at IS NOT NULL")
    assert [r["revoked_reason"] for r in reasons] == ["max_sessions", "max_sessions"]
