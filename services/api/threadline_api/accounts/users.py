"""Setup, registration, admin user creation and user lookup (contract 3.2, 3.3)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from threadline_api.accounts import repository
from threadline_api.accounts.views import authenticated_user, user_public
from threadline_api.passwords import Passwords
from threadline_shared.auth import principal_of, require_admin
from threadline_shared.dto.auth import (
    AdminCreateUserRequest,
    AuthenticatedUser,
    RegisterRequest,
    SetupRequest,
    SetupStatus,
    UserListResponse,
    UserPublic,
)
from threadline_shared.errors import Conflict, InvalidRequest, NotFound
from threadline_shared.params import path_uuid, query_int, read_json
from threadline_shared.responses import model_response
from threadline_shared.routes import ApiRoute, Doc


def passwords(request: Request) -> Passwords:
    hasher: Passwords = request.app.state.passwords
    return hasher


USERS_PAGE_DEFAULT, USERS_PAGE_MAX = 20, 100
QUERY_MAX_CHARS = 64
TAGS = ("accounts",)


async def setup_status(request: Request) -> Response:
    return model_response(SetupStatus(is_setup=await repository.any_user_exists(request.state.pool)))


async def setup(request: Request) -> Response:
    """The first user, with roles admin and member; 409 once any user exists (racing setups: one wins)."""
    body = await read_json(request, SetupRequest)
    password_hash = await passwords(request).hash(body.password)
    async with request.state.pool.acquire() as conn, conn.transaction():
        await repository.lock_setup(conn)
        if await repository.any_user_exists(conn):
            raise Conflict("already set up")
        row = await repository.insert_user(
            conn,
            username=body.username,
            email=body.email,
            password_hash=password_hash,
            display_name=body.display_name,
            roles=["admin", "member"],
        )
    return model_response(authenticated_user(row))


async def register(request: Request) -> Response:
    body = await read_json(request, RegisterRequest)
    if not request.app.state.settings.registration_enabled:
        raise NotFound("registration is disabled")
    if not await repository.any_user_exists(request.state.pool):
        raise Conflict("setup required")
    row = await repository.insert_user(
        request.state.pool,
        username=body.username,
        email=body.email,
        password_hash=await passwords(request).hash(body.password),
        display_name=body.display_name,
        roles=["member"],
    )
    return model_response(authenticated_user(row), 201)


async def admin_create_user(request: Request) -> Response:
    body = await read_json(request, AdminCreateUserRequest)
    require_admin(principal_of(request))
    row = await repository.insert_user(
        request.state.pool,
        username=body.username,
        email=body.email,
        password_hash=await passwords(request).hash(body.password),
        display_name=body.display_name,
        roles=[role.value for role in body.granted_roles()],
    )
    return model_response(authenticated_user(row), 201)


async def get_user(request: Request) -> Response:
    row = await repository.get_user(request.state.pool, path_uuid(request, "user_id"))
    if row is None:
        raise NotFound("user not found")
    return model_response(user_public(row))


async def list_users(request: Request) -> Response:
    query = request.query_params.get("query")
    if query is not None and len(query) > QUERY_MAX_CHARS:
        raise InvalidRequest.for_field("query", f"must have at most {QUERY_MAX_CHARS} characters")
    limit = query_int(request, "limit", default=USERS_PAGE_DEFAULT, minimum=1, maximum=USERS_PAGE_MAX)
    rows = await repository.search_users(request.state.pool, query or None, limit)
    return model_response(UserListResponse(users=[user_public(row) for row in rows]))


def routes() -> list[BaseRoute]:
    return [
        ApiRoute("/api/setup", setup_status, methods=["GET"], doc=Doc("Is the first admin set up?",
                 responses={200: SetupStatus}, tags=TAGS)),
        ApiRoute("/api/setup", setup, methods=["POST"], name="setup_create", doc=Doc(
            "Create the first admin", request=SetupRequest, responses={200: AuthenticatedUser}, tags=TAGS)),
        ApiRoute("/api/auth/register", register, methods=["POST"], doc=Doc(
            "Register", request=RegisterRequest, responses={201: AuthenticatedUser}, tags=TAGS)),
        ApiRoute("/api/admin/users", admin_create_user, methods=["POST"], doc=Doc(
            "Create a user (global admin)", request=AdminCreateUserRequest,
            responses={201: AuthenticatedUser}, auth=True, csrf=True, tags=TAGS)),
        ApiRoute("/api/users", list_users, methods=["GET"], doc=Doc(
            "Find users", responses={200: UserListResponse}, auth=True, tags=TAGS,
            query={"query": {"type": "string", "maxLength": QUERY_MAX_CHARS},
                   "limit": {"type": "integer", "minimum": 1}})),
        ApiRoute("/api/users/{user_id}", get_user, methods=["GET"], doc=Doc(
            "A user", responses={200: UserPublic}, auth=True, tags=TAGS)),
    ]  # fmt: skip
