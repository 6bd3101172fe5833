"""The rate-limit admin API (contract 8.8); global admins only.

Check order (1.7): the body is parsed first (400/415, and 422 ``validation_failed`` when it is not an
object or an id is malformed), then 403 without the global admin role, then 404, 409, and last the 422
``invalid_profile`` / ``invalid_assignment`` of the values themselves.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from threadline_api.ratelimits import repository
from threadline_shared.auth import principal_of, require_admin
from threadline_shared.dto.base import RequestModel, Uuid
from threadline_shared.dto.ratelimit import (
    RATE_LIMIT_ASSIGNMENT_LIST_ADAPTER,
    RATE_LIMIT_PROFILE_LIST_ADAPTER,
    RateLimitAssignment,
    RateLimitProfile,
    RateLimitValidationError,
    normalise_assignment,
    validate_algorithm,
    validate_gcra_params,
    validate_profile_name,
)
from threadline_shared.errors import Conflict, InvalidAssignment, InvalidProfile, NotFound, field_errors
from threadline_shared.params import path_uuid, read_json
from threadline_shared.responses import model_response, no_content
from threadline_shared.routes import ApiRoute, Doc

TAGS = ("admin",)


class ProfileBody(RequestModel):
    """Any JSON values: their checks answer 422 ``invalid_profile`` (8.8), not ``validation_failed``."""

    name: Any = None
    algorithm: Any = None
    params: Any = None
    description: Any = None


class AssignmentBody(RequestModel):
    profile_id: Uuid
    method: Any = None
    path: Any = None


def _profile(row: asyncpg.Record) -> RateLimitProfile:
    return RateLimitProfile.model_validate(dict(row))


def _assignment(row: asyncpg.Record) -> RateLimitAssignment:
    return RateLimitAssignment.model_validate(dict(row))


def _description(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise RateLimitValidationError.single("description", "must be a string")


def _invalid_profile(exc: RateLimitValidationError) -> InvalidProfile:
    return InvalidProfile(str(exc), details=field_errors([(e["field"], e["message"]) for e in exc.errors]))


async def list_profiles(request: Request) -> Response:
    require_admin(principal_of(request))
    profiles = [_profile(row) for row in await repository.list_profiles(request.state.pool)]
    return Response(RATE_LIMIT_PROFILE_LIST_ADAPTER.dump_json(profiles), media_type="application/json")


async def create_profile(request: Request) -> Response:
    body = await read_json(request, ProfileBody)
    require_admin(principal_of(request))
    pool = request.state.pool
    if (
        isinstance(body.name, str)
        and body.name.strip()
        and await repository.name_taken(pool, body.name.strip())
    ):
        raise Conflict("profile name is taken")
    try:
        name = validate_profile_name(body.name)
        validate_algorithm(body.algorithm)
        params = validate_gcra_params(body.params)
        description = _description(body.description)
    except RateLimitValidationError as exc:
        raise _invalid_profile(exc) from None
    async with pool.acquire() as conn, conn.transaction():
        row = await repository.insert_profile(conn, name, params.model_dump(mode="json"), description)
    return model_response(_profile(row), 201)


async def update_profile(request: Request) -> Response:
    profile_id = path_uuid(request, "profile_id")
    body = await read_json(request, ProfileBody)
    require_admin(principal_of(request))
    pool = request.state.pool
    if await repository.get_profile(pool, profile_id) is None:
        raise NotFound("profile not found")
    try:
        params = validate_gcra_params(body.params)
        description = _description(body.description)
    except RateLimitValidationError as exc:
        raise _invalid_profile(exc) from None
    async with pool.acquire() as conn, conn.transaction():
        row = await repository.update_profile(conn, profile_id, params.model_dump(mode="json"), description)
    if row is None:
        raise NotFound("profile not found")
    return model_response(_profile(row))


async def delete_profile(request: Request) -> Response:
    profile_id = path_uuid(request, "profile_id")
    require_admin(principal_of(request))
    async with request.state.pool.acquire() as conn, conn.transaction():
        if not await repository.delete_profile(conn, profile_id):
            raise NotFound("profile not found")
    return no_content()


async def list_assignments(request: Request) -> Response:
    require_admin(principal_of(request))
    assignments = [_assignment(row) for row in await repository.list_assignments(request.state.pool)]
    return Response(RATE_LIMIT_ASSIGNMENT_LIST_ADAPTER.dump_json(assignments), media_type="application/json")


async def assign(request: Request) -> Response:
    body = await read_json(request, AssignmentBody)
    require_admin(principal_of(request))
    pool = request.state.pool
    if await repository.get_profile(pool, body.profile_id) is None:
        raise NotFound("profile not found")
    try:
        method, path = normalise_assignment(body.method, body.path)
    except RateLimitValidationError as exc:
        errors = field_errors([(e["field"], e["message"]) for e in exc.errors])
        raise InvalidAssignment(str(exc), details=errors) from None
    async with pool.acquire() as conn, conn.transaction():
        row, created = await repository.upsert_assignment(conn, body.profile_id, method, path)
    return model_response(_assignment(row), 201 if created else 200)


async def unassign(request: Request) -> Response:
    assignment_id = path_uuid(request, "assignment_id")
    require_admin(principal_of(request))
    async with request.state.pool.acquire() as conn, conn.transaction():
        if not await repository.delete_assignment(conn, assignment_id):
            raise NotFound("assignment not found")
    return no_content()


def _doc(summary: str, request: type[BaseModel] | None, responses: dict[int, type[BaseModel] | None]) -> Doc:
    return Doc(summary, request=request, responses=responses, auth=True, csrf=True, tags=TAGS)


def routes() -> list[BaseRoute]:
    profiles, assignments = "/api/admin/limits/profiles", "/api/admin/limits/assignments"
    return [
        ApiRoute(profiles, list_profiles, methods=["GET"], doc=_doc("Profiles, by name", None, {200: None})),
        ApiRoute(profiles, create_profile, methods=["POST"], doc=_doc(
            "Create a profile", ProfileBody, {201: RateLimitProfile})),
        ApiRoute(profiles + "/{profile_id}", update_profile, methods=["PUT"], doc=_doc(
            "Replace a profile's params and description", ProfileBody, {200: RateLimitProfile})),
        ApiRoute(profiles + "/{profile_id}", delete_profile, methods=["DELETE"], doc=_doc(
            "Delete an unassigned profile", None, {204: None})),
        ApiRoute(assignments, list_assignments, methods=["GET"], doc=_doc(
            "Assignments, by method then path", None, {200: None})),
        ApiRoute(assignments, assign, methods=["POST"], doc=_doc(
            "Assign a profile to a (method, path)", AssignmentBody, {200: RateLimitAssignment,
                                                                     201: RateLimitAssignment})),
        ApiRoute(assignments + "/{assignment_id}", unassign, methods=["DELETE"], doc=_doc(
            "Delete an assignment", None, {204: None})),
    ]  # fmt: skip
