"""Rows and principals as contract DTOs."""

from __future__ import annotations

import asyncpg

from threadline_shared.dto.auth import AuthenticatedUser, LoginResponse, SessionSummary, UserPublic
from threadline_shared.dto.enums import GlobalRole
from threadline_shared.sessions import IssuedSession, Principal


def authenticated_user(row: asyncpg.Record) -> AuthenticatedUser:
    return AuthenticatedUser(
        id=row["id"],
        email=row["email"],
        username=row["username"],
        display_name=row["display_name"],
        roles=[GlobalRole(role) for role in row["roles"]],
    )


def principal_user(principal: Principal) -> AuthenticatedUser:
    return AuthenticatedUser(
        id=principal.user_id,
        email=principal.email,
        username=principal.username,
        display_name=principal.display_name,
        roles=[GlobalRole(role) for role in principal.roles],
    )


def user_public(row: asyncpg.Record) -> UserPublic:
    return UserPublic(id=row["id"], username=row["username"], display_name=row["display_name"])


def session_summary(principal: Principal) -> SessionSummary:
    return SessionSummary(
        id=principal.session_id,
        issued_at=principal.issued_at,
        expires_at=principal.expires_at,
        absolute_expires_at=principal.absolute_expires_at,
    )


def login_response(issued: IssuedSession) -> LoginResponse:
    return LoginResponse(
        user=principal_user(issued.principal),
        session=session_summary(issued.principal),
        csrf_token=issued.csrf_token,
        session_token=issued.token,
    )
