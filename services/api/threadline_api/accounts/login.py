"""Login, refresh, logout and me (contract 3.4); cookies (3.6)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from threadline_api.accounts import repository, throttle
from threadline_api.accounts.users import passwords
from threadline_api.accounts.views import login_response, principal_user, session_summary
from threadline_shared.auth import (
    ROTATED_HEADER,
    cleared_cookies,
    clock_of,
    credentials,
    principal_of,
    session_cookies,
    session_service,
    set_cookies,
)
from threadline_shared.dto.auth import LoginRequest, LoginResponse, LogoutResponse, MeResponse
from threadline_shared.errors import InvalidCredentials, InvalidSession, MissingSession, UserDisabled
from threadline_shared.params import client_ip, read_json
from threadline_shared.responses import model_response
from threadline_shared.routes import ApiRoute, Doc
from threadline_shared.sessions import IssuedSession, Principal

TAGS = ("auth",)


def _session_response(
    request: Request, issued: IssuedSession, headers: dict[str, str] | None = None
) -> Response:
    response = model_response(login_response(issued), headers=headers)
    set_cookies(response, session_cookies(issued, request.app.state.settings, clock_of(request).now()))
    return response


async def login(request: Request) -> Response:
    by_ip = await throttle.check_ip(request, client_ip(request))
    throttle.remember(request, by_ip)
    body = await read_json(request, LoginRequest)
    pool = request.state.pool
    user = await repository.find_for_login(pool, body.email)
    account = str(user["id"]) if user is not None else body.email.lower()
    by_account = await throttle.check_account(request, account)
    throttle.remember(request, throttle.tightest(by_ip, by_account))
    hasher = passwords(request)
    if not await hasher.verify(user["password_hash"] if user is not None else None, body.password):
        raise InvalidCredentials()
    assert user is not None
    if user["disabled_at"] is not None:
        raise UserDisabled()
    if hasher.needs_rehash(user["password_hash"]):
        await repository.update_password_hash(pool, user["id"], await hasher.hash(body.password))
    issued = await session_service(request).issue(user)
    return _session_response(request, issued)


async def _token_principal(request: Request) -> Principal:
    """Refresh and logout read the token themselves (bearer, else cookie) and never rotate implicitly."""
    found = credentials(request)
    if found is None:
        raise MissingSession()
    token, via_cookie = found
    verified = await session_service(request).verify(token, via_cookie=via_cookie, allow_rotation=False)
    assert isinstance(verified, Principal)
    return verified


async def refresh(request: Request) -> Response:
    """Always rotates: the old token stops working, the new session keeps the absolute deadline."""
    principal = await _token_principal(request)
    issued = await session_service(request).rotate(principal, "refresh")
    if issued is None:  # a concurrent request rotated this session first
        raise InvalidSession()
    return _session_response(request, issued, {ROTATED_HEADER: "1"})


async def logout(request: Request) -> Response:
    principal = await _token_principal(request)
    await session_service(request).revoke(principal.session_id, "logout")
    response = model_response(LogoutResponse(ok=True))
    set_cookies(response, cleared_cookies(request.app.state.settings))
    return response


async def me(request: Request) -> Response:
    principal = principal_of(request)
    return model_response(MeResponse(user=principal_user(principal), session=session_summary(principal)))


def routes() -> list[BaseRoute]:
    return [
        ApiRoute("/api/auth/login", login, methods=["POST"], doc=Doc(
            "Log in with an email or username", request=LoginRequest, responses={200: LoginResponse},
            tags=TAGS)),
        ApiRoute("/api/auth/refresh", refresh, methods=["POST"], doc=Doc(
            "Rotate the session", responses={200: LoginResponse}, tags=TAGS)),
        ApiRoute("/api/auth/logout", logout, methods=["POST"], doc=Doc(
            "Revoke the session and clear cookies", responses={200: LogoutResponse}, tags=TAGS)),
        ApiRoute("/api/auth/me", me, methods=["GET"], doc=Doc(
            "The caller and their session", responses={200: MeResponse}, auth=True, tags=TAGS)),
    ]  # fmt: skip
