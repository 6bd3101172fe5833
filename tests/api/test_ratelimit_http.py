"""HTTP rate limits in the request pipeline (contract 8.2, 8.5, 8.6, 8.7): which profile applies, buckets per
user or per IP, headers on every evaluated response, the 429."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.support.api import Api, Persona
from tests.support.problems import assert_problem


async def assign(api: Api, admin: Persona, method: str, path: str, rps: float = 1, burst: int = 2) -> None:
    profile = await api.post(
        "/api/admin/limits/profiles",
        admin,
        json={"name": "tight", "params": {"requests_per_second": rps, "burst": burst}},
    )
    assert profile.status_code == 201, profile.text
    assigned = await api.post(
        "/api/admin/limits/assignments",
        admin,
        json={"profile_id": profile.json()["id"], "method": method, "path": path},
    )
    assert assigned.status_code == 201, assigned.text


async def until_profile(
    api: Api, user: Persona | None, path: str, profile: str, **kwargs: Any
) -> httpx.Response:
    """Requests ``path`` until the rule book reloaded (NOTIFY) and ``profile`` applies; at most 10 s."""
    async with asyncio.timeout(10):
        while True:
            response = await api.get(path, user, **kwargs)
            if response.headers.get("x-ratelimit-profile") == profile:
                return response
            await asyncio.sleep(0.05)


async def test_requests_without_an_assignment_use_the_default_profile(api: Api) -> None:
    alice = await api.persona("alice")
    response = await api.get("/api/auth/me", alice)
    assert response.headers["x-ratelimit-profile"] == "default"
    assert response.headers["ratelimit-limit"] == "100"
    assert response.headers["ratelimit-remaining"] == "99"
    assert response.headers["ratelimit-reset"] == "1"


async def test_an_assignment_applies_its_profile_and_denies_past_the_burst(api: Api) -> None:
    alice = await api.persona("alice")
    await assign(api, alice, "GET", "/api/users/:id")
    first = await until_profile(api, alice, f"/api/users/{alice.id}", "tight")
    second = await api.get(f"/api/users/{alice.id}", alice)
    third = await api.get(f"/api/users/{alice.id}", alice)

    assert [first.status_code, second.status_code] == [200, 200]
    assert second.headers["ratelimit-remaining"] == "0"
    problem = assert_problem(third, 429, "RGP.RATE_LIMITED")
    assert problem["message"] == "rate limit exceeded"
    assert third.headers["x-ratelimit-profile"] == "tight"
    assert third.headers["retry-after"] == "1"
    assert problem["details"] == {"retry_after_seconds": 1}
    api.clock.advance(1)
    assert (await api.get(f"/api/users/{alice.id}", alice)).status_code == 200


async def test_buckets_are_per_user(api: Api) -> None:
    alice = await api.persona("alice")
    bob = await api.persona("bob")
    await assign(api, alice, "GET", "/api/auth/me", burst=1)
    await until_profile(api, alice, "/api/auth/me", "tight")
    assert (await api.get("/api/auth/me", alice)).status_code == 429
    assert (await api.get("/api/auth/me", bob)).status_code == 200


async def test_anonymous_requests_are_limited_per_client_ip(api: Api) -> None:
    alice = await api.persona("alice")
    await assign(api, alice, "GET", "/api/setup", burst=1)
    await until_profile(api, None, "/api/setup", "tight")
    assert_problem(await api.get("/api/setup"), 429, "RGP.RATE_LIMITED")


async def test_the_rate_limit_runs_after_authentication(api: Api) -> None:
    alice = await api.persona("alice")
    await assign(api, alice, "GET", "/api/auth/me", burst=1)
    await until_profile(api, alice, "/api/auth/me", "tight")
    anonymous = await api.get("/api/auth/me")
    assert_problem(anonymous, 401, "RGP.AUTH.MISSING_SESSION")
    assert "x-ratelimit-profile" not in anonymous.headers


async def test_errors_after_an_allowed_decision_carry_its_headers(api: Api) -> None:
    alice = await api.persona("alice")
    response = await api.get("/api/users/not-a-uuid", alice)
    assert_problem(response, 400, "invalid_request")
    assert response.headers["x-ratelimit-profile"] == "default"


async def test_operational_endpoints_and_preflights_are_not_limited(api: Api) -> None:
    health = await api.http.get("/healthz")
    preflight = await api.http.options(
        "/api/auth/me", headers={"origin": "http://nowhere.example", "access-control-request-method": "GET"}
    )
    assert "x-ratelimit-profile" not in health.headers
    assert "x-ratelimit-profile" not in preflight.headers


async def test_a_successful_post_describes_the_http_profile(api: Api) -> None:
    alice = await api.persona("alice")
    conversation = (await api.post("/api/conversations", alice, json={"title": "t"})).json()[
        "conversation_id"
    ]
    response = await api.post(f"/api/threads/{conversation}/root", alice, json={"content": "hi"})
    assert response.status_code == 201
    assert response.headers["x-ratelimit-profile"] == "default"
