"""Setup, registration, sessions and users (contract 3)."""

from __future__ import annotations

from collections.abc import Sequence

from threadline_client.http import without_none
from threadline_client.routes.base import Id, RouteGroup, ident, parse
from threadline_shared.dto import (
    AuthenticatedUser,
    GlobalRole,
    LoginResponse,
    LogoutResponse,
    MeResponse,
    SetupStatus,
    UserListResponse,
    UserPublic,
)


class AuthRoutes(RouteGroup):
    async def setup_status(self) -> SetupStatus:
        """``GET /api/setup``: whether any user exists."""
        return parse(SetupStatus, await self.session.request("GET", "/api/setup"))

    async def setup(
        self, username: str, email: str, password: str, *, display_name: str | None = None
    ) -> AuthenticatedUser:
        """``POST /api/setup``: create the first user (global admin). Sets no session: log in next."""
        body = without_none(username=username, email=email, password=password, display_name=display_name)
        return parse(AuthenticatedUser, await self.session.request("POST", "/api/setup", json=body))

    async def register(
        self, username: str, email: str, password: str, *, display_name: str | None = None
    ) -> AuthenticatedUser:
        """``POST /api/auth/register``. Sets no session: log in next."""
        body = without_none(username=username, email=email, password=password, display_name=display_name)
        return parse(AuthenticatedUser, await self.session.request("POST", "/api/auth/register", json=body))

    async def login(self, identifier: str, password: str) -> LoginResponse:
        """``POST /api/auth/login`` (email or username); the client uses the new session from now on."""
        body = {"email": identifier, "password": password}
        login = parse(LoginResponse, await self.session.request("POST", "/api/auth/login", json=body))
        self.session.token = login.session_token
        return login

    async def refresh(self) -> LoginResponse:
        """``POST /api/auth/refresh``: rotate the session (the old token stops working at once)."""
        login = parse(LoginResponse, await self.session.request("POST", "/api/auth/refresh"))
        self.session.token = login.session_token
        return login

    async def logout(self) -> LogoutResponse:
        """``POST /api/auth/logout``: revoke the session; the client forgets its credentials."""
        answer = parse(LogoutResponse, await self.session.request("POST", "/api/auth/logout"))
        self.session.forget_credentials()
        return answer

    async def me(self) -> MeResponse:
        """``GET /api/auth/me``."""
        return parse(MeResponse, await self.session.request("GET", "/api/auth/me"))

    async def admin_create_user(
        self,
        username: str,
        email: str,
        password: str,
        *,
        display_name: str | None = None,
        roles: Sequence[GlobalRole | str] | None = None,
    ) -> AuthenticatedUser:
        """``POST /api/admin/users`` (global admin only)."""
        body = without_none(
            username=username,
            email=email,
            password=password,
            display_name=display_name,
            roles=[str(role) for role in roles] if roles is not None else None,
        )
        return parse(AuthenticatedUser, await self.session.request("POST", "/api/admin/users", json=body))

    async def users(self, query: str | None = None, *, limit: int | None = None) -> list[UserPublic]:
        """``GET /api/users``: users whose username or display name contains ``query``, by username."""
        response = await self.session.request("GET", "/api/users", params={"query": query, "limit": limit})
        return parse(UserListResponse, response).users

    async def user(self, user_id: Id) -> UserPublic:
        """``GET /api/users/{user_id}``."""
        return parse(UserPublic, await self.session.request("GET", f"/api/users/{ident(user_id)}"))
