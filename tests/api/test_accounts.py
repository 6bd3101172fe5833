"""Setup, registration, admin user creation and user lookup (contract 3.2, 3.3)."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import asyncpg
import pytest
from redis.asyncio import Redis

from tests.support.api import PASSWORD, Api, running_api
from tests.support.problems import assert_problem


def user_body(name: str, **extra: object) -> dict[str, object]:
    return {"username": name, "email": f"{name}@example.com", "password": PASSWORD, **extra}


async def test_setup_creates_the_first_admin_once(api: Api) -> None:
    assert (await api.get("/api/setup")).json() == {"is_setup": False}

    created = await api.post("/api/setup", json=user_body("alice", display_name="  Alice  "))
    again = await api.post("/api/setup", json=user_body("mallory"))

    assert created.status_code == 200
    body = created.json()
    assert body["roles"] == ["admin", "member"]
    assert body["display_name"] == "Alice"
    assert set(body) == {"id", "email", "username", "display_name", "roles"}
    assert "set-cookie" not in created.headers
    assert (await api.get("/api/setup")).json() == {"is_setup": True}
    assert_problem(again, 409, "RGP.CONFLICT")


async def test_of_two_racing_setups_exactly_one_succeeds(api: Api) -> None:
    results = await asyncio.gather(*(api.post("/api/setup", json=user_body(f"admin{i}")) for i in range(4)))
    assert sorted(r.status_code for r in results) == [200, 409, 409, 409]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (user_body("al"), "username"),
        (user_body("al ice"), "username"),
        ({**user_body("alice"), "email": "alice.example.com"}, "email"),
        ({**user_body("alice"), "password": "short"}, "password"),
        ({**user_body("alice"), "display_name": "x" * 65}, "display_name"),
        ({"username": "alice", "email": "alice@example.com"}, "password"),
    ],
)
async def test_setup_validates_its_body(api: Api, body: dict[str, object], field: str) -> None:
    problem = assert_problem(await api.post("/api/setup", json=body), 422, "validation_failed")
    assert field in [error["field"] for error in problem["details"]["errors"]]


async def test_registration_needs_setup_first(api: Api) -> None:
    assert_problem(await api.post("/api/auth/register", json=user_body("bob")), 409, "RGP.CONFLICT")


async def test_registration_creates_a_member_without_cookies(api: Api) -> None:
    await api.persona("alice")
    response = await api.post("/api/auth/register", json=user_body("bob"))

    assert response.status_code == 201
    assert response.json()["roles"] == ["member"]
    assert "display_name" not in response.json()
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    "clash",
    [{"username": "BOB", "email": "other@example.com"}, {"username": "bobby", "email": "Bob@Example.com"}],
)
async def test_usernames_and_emails_are_unique_ignoring_case(api: Api, clash: dict[str, str]) -> None:
    await api.persona("alice")
    await api.persona("bob")
    response = await api.post("/api/auth/register", json={**clash, "password": PASSWORD})
    assert_problem(response, 409, "RGP.CONFLICT")


async def test_registration_can_be_switched_off(
    pool: asyncpg.Pool, redis: Redis, database_url: str, redis_url: str
) -> None:
    async with running_api(database_url, redis_url, registration_enabled=False) as closed:
        await closed.post("/api/setup", json=user_body("alice"))
        response = await closed.post("/api/auth/register", json=user_body("bob"))
    assert_problem(response, 404, "RGP.NOT_FOUND")


async def test_a_global_admin_creates_users_with_roles(api: Api) -> None:
    alice = await api.persona("alice")
    plain = await api.post("/api/admin/users", alice, json=user_body("bob"))
    admin = await api.post("/api/admin/users", alice, json=user_body("carol", roles=["admin"]))
    read_only = await api.post(
        "/api/admin/users", alice, json=user_body("dave", roles=["read_only", "read_only"])
    )

    assert plain.status_code == 201
    assert plain.json()["roles"] == ["member"]
    assert admin.json()["roles"] == ["admin", "member"]
    assert read_only.json()["roles"] == ["member", "read_only"]


async def test_only_a_global_admin_creates_users(api: Api) -> None:
    await api.persona("alice")
    bob = await api.persona("bob")
    assert_problem(
        await api.post("/api/admin/users", bob, json=user_body("carol")), 403, "RGP.RBAC.FORBIDDEN"
    )


async def test_admin_user_creation_reports_taken_names_and_bad_bodies(api: Api) -> None:
    alice = await api.persona("alice")
    assert_problem(await api.post("/api/admin/users", alice, json=user_body("ALICE")), 409, "RGP.CONFLICT")
    assert_problem(
        await api.post("/api/admin/users", alice, json=user_body("carol", roles=["root"])),
        422,
        "validation_failed",
    )


async def test_admin_user_creation_needs_a_session(api: Api) -> None:
    response = await api.post("/api/admin/users", json=user_body("carol"))
    assert_problem(response, 401, "RGP.AUTH.MISSING_SESSION")
    assert response.headers["www-authenticate"] == "session"


async def test_any_user_looks_up_another(api: Api, pool: asyncpg.Pool) -> None:
    alice = await api.persona("alice")
    bob = await api.persona("bob")
    await pool.execute("UPDATE users SET disabled_at = now() WHERE id = $1", bob.id)

    found = await api.get(f"/api/users/{bob.id}", alice)
    upper = await api.get(f"/api/users/{str(bob.id).upper()}", alice)

    assert found.status_code == 200
    assert found.json() == {"id": str(bob.id), "username": "bob", "display_name": "Bob"}
    assert upper.json() == found.json()
    assert_problem(await api.get(f"/api/users/{uuid4()}", alice), 404, "RGP.NOT_FOUND")
    assert_problem(await api.get("/api/users/not-a-uuid", alice), 400, "invalid_request")


async def test_user_search_matches_username_or_display_name_ignoring_case(
    api: Api, pool: asyncpg.Pool
) -> None:
    alice = await api.persona("alice")
    for name in ("bob", "carol", "dave", "erin"):
        await api.persona(name)
    await pool.execute("UPDATE users SET display_name = 'Rob the builder' WHERE username = 'dave'")
    await pool.execute("UPDATE users SET disabled_at = now() WHERE username = 'erin'")

    by_name = await api.get("/api/users", alice, params={"query": "O"})
    everyone = await api.get("/api/users", alice)
    limited = await api.get("/api/users", alice, params={"limit": "2"})

    assert [u["username"] for u in by_name.json()["users"]] == ["bob", "carol", "dave"]
    assert [u["username"] for u in everyone.json()["users"]] == ["alice", "bob", "carol", "dave"]
    assert [u["username"] for u in limited.json()["users"]] == ["alice", "bob"]


@pytest.mark.parametrize("params", [{"query": "x" * 65}, {"limit": "0"}, {"limit": "many"}])
async def test_user_search_rejects_bad_parameters(api: Api, params: dict[str, str]) -> None:
    alice = await api.persona("alice")
    assert_problem(await api.get("/api/users", alice, params=params), 400, "invalid_request")
