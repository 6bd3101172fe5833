"""CSRF double submit (contract 3.9): checked on unsafe methods of cookie-authenticated requests, after
authentication; bearer requests and /api/auth/* are exempt."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from tests.support.api import PASSWORD, Api, running_api
from tests.support.problems import assert_problem

NEW_USER = {"username": "carol", "email": "carol@example.com", "password": PASSWORD}


async def test_a_cookie_request_without_the_header_is_refused(api: Api) -> None:
    alice = await api.persona("alice")
    async with alice.browser(csrf=False) as browser:
        problem = assert_problem(await browser.post("/api/admin/users", json=NEW_USER), 403, "RGP.AUTH.CSRF")
    assert problem["message"] == "missing CSRF header token"


async def test_a_mismatched_header_is_refused(api: Api) -> None:
    alice = await api.persona("alice")
    async with alice.browser(csrf=False) as browser:
        response = await browser.post("/api/admin/users", json=NEW_USER, headers={"X-CSRF-TOKEN": "forged"})
    assert assert_problem(response, 403, "RGP.AUTH.CSRF")["message"] == "CSRF token mismatch"


async def test_the_header_must_match_exactly(api: Api) -> None:
    alice = await api.persona("alice")
    async with alice.browser(csrf=False) as browser:
        response = await browser.post(
            "/api/admin/users", json=NEW_USER, headers={"X-CSRF-TOKEN": alice.csrf_token.swapcase()}
        )
    assert_problem(response, 403, "RGP.AUTH.CSRF")


async def test_a_missing_cookie_is_refused(api: Api) -> None:
    alice = await api.persona("alice")
    async with httpx.AsyncClient(base_url=api.url, cookies={"SESSION_ID": alice.token}) as browser:
        response = await browser.post(
            "/api/admin/users", json=NEW_USER, headers={"X-CSRF-TOKEN": alice.csrf_token}
        )
    assert assert_problem(response, 403, "RGP.AUTH.CSRF")["message"] == "missing CSRF cookie token"


async def test_a_matching_header_passes_whatever_its_case(api: Api) -> None:
    alice = await api.persona("alice")
    async with alice.browser(csrf=False) as browser:
        response = await browser.post(
            "/api/admin/users", json=NEW_USER, headers={"x-csrf-token": alice.csrf_token}
        )
    assert response.status_code == 201


async def test_bearer_requests_need_no_csrf(api: Api) -> None:
    alice = await api.persona("alice")
    response = await api.post("/api/admin/users", alice, json=NEW_USER)
    assert response.status_code == 201


async def test_safe_methods_need_no_csrf(api: Api) -> None:
    alice = await api.persona("alice")
    async with alice.browser(csrf=False) as browser:
        assert (await browser.get("/api/auth/me")).status_code == 200
        assert (await browser.get("/api/users")).status_code == 200


@pytest.mark.parametrize("path", ["/api/auth/refresh", "/api/auth/logout"])
async def test_auth_routes_are_exempt(api: Api, path: str) -> None:
    alice = await api.persona("alice")
    async with alice.browser(csrf=False) as browser:
        assert (await browser.post(path)).status_code == 200


async def test_authentication_is_checked_before_csrf(api: Api) -> None:
    async with httpx.AsyncClient(base_url=api.url, cookies={"SESSION_ID": "x" * 43}) as browser:
        response = await browser.post("/api/admin/users", json=NEW_USER)
    assert_problem(response, 401, "RGP.AUTH.INVALID_SESSION")


async def test_csrf_runs_before_body_parsing(api: Api) -> None:
    alice = await api.persona("alice")
    async with alice.browser(csrf=False) as browser:
        response = await browser.post(
            "/api/admin/users", content=b"{not json", headers={"content-type": "text/plain"}
        )
    assert_problem(response, 403, "RGP.AUTH.CSRF")


async def test_the_check_can_be_switched_off(
    pool: asyncpg.Pool, redis: Redis, database_url: str, redis_url: str
) -> None:
    async with running_api(database_url, redis_url, csrf_enabled=False) as relaxed:
        alice = await relaxed.persona("alice")
        async with alice.browser(csrf=False) as browser:
            response = await browser.post("/api/admin/users", json=NEW_USER)
    assert response.status_code == 201
