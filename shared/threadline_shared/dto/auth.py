"""Authentication and user DTOs (contract 3.1-3.4)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, field_validator

from threadline_shared.dto.base import RequestModel, Timestamp, Uuid, WireModel
from threadline_shared.dto.enums import GlobalRole
from threadline_shared.dto.fields import DisplayName, Email, NonBlankString, Password, Username

# ---- requests ---------------------------------------------------------------------------------------------


class SetupRequest(RequestModel):
    """``POST /api/setup`` (3.2): the first user, who gets roles ``["admin", "member"]``."""

    username: Username
    email: Email
    password: Password
    display_name: DisplayName = None


class RegisterRequest(RequestModel):
    """``POST /api/auth/register`` (3.3)."""

    username: Username
    email: Email
    password: Password
    display_name: DisplayName = None


class AdminCreateUserRequest(RequestModel):
    """``POST /api/admin/users`` (3.3). ``roles`` absent or empty gives ``["member"]``."""

    username: Username
    email: Email
    password: Password
    display_name: DisplayName = None
    roles: list[GlobalRole] | None = None

    def granted_roles(self) -> list[GlobalRole]:
        """The roles to store: the requested ones plus ``member``, sorted, without duplicates (3.3)."""
        return sorted({*(self.roles or ()), GlobalRole.MEMBER})


class LoginRequest(RequestModel):
    """``POST /api/auth/login`` (3.4). ``email`` holds an email or a username.

    A blank identifier is rejected. The password only has to be non-empty: a password of spaces is valid at
    registration, and wrong passwords must get 401, not 422.
    """

    email: NonBlankString
    password: Annotated[str, StringConstraints(strict=True, min_length=1)]


# ---- responses --------------------------------------------------------------------------------------------


class AuthenticatedUser(WireModel):
    """The caller's own user (3.1). ``roles`` is sorted, without duplicates, never empty."""

    id: Uuid
    email: str
    username: str
    display_name: str | None = None
    roles: list[GlobalRole] = Field(min_length=1)

    @field_validator("roles")
    @classmethod
    def _sorted_roles(cls, roles: list[GlobalRole]) -> list[GlobalRole]:
        return sorted(set(roles))


class UserPublic(WireModel):
    """Another user as any signed-in user sees them (3.1)."""

    id: Uuid
    username: str
    display_name: str | None = None


class SessionSummary(WireModel):
    """A session (3.1); ``id`` is the session id, never the token. ``expires_at`` is the idle deadline."""

    id: Uuid
    issued_at: Timestamp
    expires_at: Timestamp
    absolute_expires_at: Timestamp


class LoginResponse(WireModel):
    """Body of a successful login or refresh (3.4)."""

    user: AuthenticatedUser
    session: SessionSummary
    csrf_token: str
    session_token: str


class MeResponse(WireModel):
    """``GET /api/auth/me`` (3.4)."""

    user: AuthenticatedUser
    session: SessionSummary


class SetupStatus(WireModel):
    """``GET /api/setup`` (3.2): true once any user exists."""

    is_setup: bool


class LogoutResponse(WireModel):
    """``POST /api/auth/logout`` (3.4)."""

    ok: bool = True


class UserListResponse(WireModel):
    """``GET /api/users`` (3.3)."""

    users: list[UserPublic]
