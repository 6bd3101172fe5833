"""The rate-limit admin API (contract 8.8): every route, status and error; global admins only."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from tests.support.api import Api, Persona
from tests.support.problems import assert_problem

PROFILES = "/api/admin/limits/profiles"
ASSIGNMENTS = "/api/admin/limits/assignments"
PARAMS = {"requests_per_second": 2, "burst": 3}


async def create(api: Api, admin: Persona, **body: Any) -> dict[str, Any]:
    response = await api.post(PROFILES, admin, json={"name": "reads", "params": PARAMS, **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_profiles_are_listed_by_name_with_the_seed(api: Api) -> None:
    alice = await api.persona("alice")
    await create(api, alice, name="zeta")
    await create(api, alice, name="alpha", description="first")

    response = await api.get(PROFILES, alice)

    assert response.status_code == 200
    body = response.json()
    assert [p["name"] for p in body] == ["alpha", "conversation.post", "zeta"]
    seed = body[1]
    assert seed["params"] == {"requests_per_second": 5, "burst": 10}
    assert seed["algorithm"] == "gcra"
    assert seed["description"] == "Default conversation posting limits"
    assert "description" not in body[2]


async def test_a_profile_is_created_trimmed_with_its_params_as_stored(api: Api) -> None:
    alice = await api.persona("alice")
    created = await create(api, alice, name="  bulk  ", params={"requests_per_second": 0.5, "burst": 1})
    assert created["name"] == "bulk"
    assert created["params"] == {"requests_per_second": 0.5, "burst": 1}
    assert set(created) == {"id", "name", "algorithm", "params", "created_at", "updated_at"}


async def test_a_taken_name_is_409(api: Api) -> None:
    alice = await api.persona("alice")
    await create(api, alice)
    response = await api.post(PROFILES, alice, json={"name": "reads", "params": PARAMS})
    assert_problem(response, 409, "RGP.CONFLICT")


@pytest.mark.parametrize(
    "body",
    [
        {"name": "  ", "params": PARAMS},
        {"name": "x" * 65, "params": PARAMS},
        {"name": "default", "params": PARAMS},
        {"name": "auth.login", "params": PARAMS},
        {"name": 5, "params": PARAMS},
        {"name": "ok", "algorithm": "token_bucket", "params": PARAMS},
        {"name": "ok", "params": {"requests_per_second": 0, "burst": 1}},
        {"name": "ok", "params": {"requests_per_second": 10001, "burst": 1}},
        {"name": "ok", "params": {"requests_per_second": 1, "burst": 0}},
        {"name": "ok", "params": {"requests_per_second": 1, "burst": 1.5}},
        {"name": "ok", "params": {"requests_per_second": "1", "burst": 1}},
        {"name": "ok", "params": "fast"},
        {"name": "ok"},
        {"name": "ok", "params": PARAMS, "description": 7},
    ],
)
async def test_invalid_profiles_are_422_invalid_profile(api: Api, body: dict[str, Any]) -> None:
    alice = await api.persona("alice")
    assert_problem(await api.post(PROFILES, alice, json=body), 422, "invalid_profile")


async def test_update_replaces_params_and_clears_an_omitted_description(api: Api) -> None:
    alice = await api.persona("alice")
    created = await create(api, alice, description="old")
    response = await api.request(
        "PUT", f"{PROFILES}/{created['id']}", alice, json={"params": {"requests_per_second": 9, "burst": 9}}
    )
    assert response.status_code == 200
    assert response.json()["params"] == {"requests_per_second": 9, "burst": 9}
    assert "description" not in response.json()
    assert response.json()["updated_at"] >= created["updated_at"]


async def test_update_errors(api: Api) -> None:
    alice = await api.persona("alice")
    created = await create(api, alice)
    unknown = await api.request("PUT", f"{PROFILES}/{uuid4()}", alice, json={"params": PARAMS})
    invalid = await api.request("PUT", f"{PROFILES}/{created['id']}", alice, json={"params": {"burst": 1}})
    assert_problem(unknown, 404, "RGP.NOT_FOUND")
    assert_problem(invalid, 422, "invalid_profile")


async def test_delete_a_profile_unless_it_is_assigned(api: Api) -> None:
    alice = await api.persona("alice")
    kept = await create(api, alice, name="kept")
    dropped = await create(api, alice, name="dropped")
    await api.post(ASSIGNMENTS, alice, json={"profile_id": kept["id"], "method": "get", "path": "/api/users"})

    assert (await api.delete(f"{PROFILES}/{dropped['id']}", alice)).status_code == 204
    assert_problem(await api.delete(f"{PROFILES}/{dropped['id']}", alice), 404, "RGP.NOT_FOUND")
    assert_problem(await api.delete(f"{PROFILES}/{kept['id']}", alice), 409, "RGP.CONFLICT")


async def test_assignments_are_created_then_repointed(api: Api) -> None:
    alice = await api.persona("alice")
    first = await create(api, alice, name="first")
    second = await create(api, alice, name="second")

    created = await api.post(
        ASSIGNMENTS, alice, json={"profile_id": first["id"], "method": "get", "path": "api/users"}
    )
    repointed = await api.post(
        ASSIGNMENTS, alice, json={"profile_id": second["id"], "method": "GET", "path": "/api/users"}
    )

    assert created.status_code == 201
    assert created.json()["method"] == "GET"
    assert created.json()["path_pattern"] == "/api/users"
    assert created.json()["profile_name"] == "first"
    assert repointed.status_code == 200
    assert repointed.json()["id"] == created.json()["id"]
    assert repointed.json()["profile_name"] == "second"


async def test_assignments_are_listed_by_method_then_path(api: Api) -> None:
    alice = await api.persona("alice")
    profile = await create(api, alice)
    for method, path in [("POST", "/api/b"), ("GET", "/api/z"), ("GET", "/api/a")]:
        await api.post(ASSIGNMENTS, alice, json={"profile_id": profile["id"], "method": method, "path": path})
    listed = (await api.get(ASSIGNMENTS, alice)).json()
    assert [(a["method"], a["path_pattern"]) for a in listed] == [
        ("GET", "/api/a"),
        ("GET", "/api/z"),
        ("POST", "/api/b"),
    ]


@pytest.mark.parametrize(
    ("method", "path"),
    [("FETCH", "/api/x"), ("get", ""), ("get", "/api/has space"), ("get", "/" + "x" * 512), (5, "/api/x")],
)
async def test_invalid_assignments_are_422(api: Api, method: Any, path: str) -> None:
    alice = await api.persona("alice")
    profile = await create(api, alice)
    response = await api.post(
        ASSIGNMENTS, alice, json={"profile_id": profile["id"], "method": method, "path": path}
    )
    assert_problem(response, 422, "invalid_assignment")


async def test_an_assignment_to_an_unknown_profile_is_404(api: Api) -> None:
    alice = await api.persona("alice")
    response = await api.post(
        ASSIGNMENTS, alice, json={"profile_id": str(uuid4()), "method": "GET", "path": "/x"}
    )
    assert_problem(response, 404, "RGP.NOT_FOUND")


async def test_deleting_an_assignment(api: Api) -> None:
    alice = await api.persona("alice")
    profile = await create(api, alice)
    assignment = (
        await api.post(ASSIGNMENTS, alice, json={"profile_id": profile["id"], "method": "GET", "path": "/x"})
    ).json()
    assert (await api.delete(f"{ASSIGNMENTS}/{assignment['id']}", alice)).status_code == 204
    assert_problem(await api.delete(f"{ASSIGNMENTS}/{assignment['id']}", alice), 404, "RGP.NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", PROFILES),
        ("POST", PROFILES),
        ("PUT", f"{PROFILES}/7d96fbe2-29c6-4402-bc1d-95e3811fc329"),
        ("DELETE", f"{PROFILES}/7f3dc598-cbf0-4493-8006-8f981c527f7f"),
        ("GET", ASSIGNMENTS),
        ("POST", ASSIGNMENTS),
        ("DELETE", f"{ASSIGNMENTS}/d9595515-dd4a-4eb6-ad93-4077f5b3b49c"),
    ],
)
async def test_every_admin_route_needs_the_global_admin_role(api: Api, method: str, path: str) -> None:
    await api.persona("alice")
    bob = await api.persona("bob")
    body = {"name": "x", "params": PARAMS, "profile_id": str(uuid4()), "method": "GET", "path": "/x"}
    response = await api.request(method, path, bob, json=body if method in ("POST", "PUT") else None)
    assert_problem(response, 403, "RGP.RBAC.FORBIDDEN")
