"""Users in PostgreSQL. Driver errors become API errors here (STYLE 5)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from threadline_shared.db import Conn
from threadline_shared.errors import Conflict

USER_COLUMNS = "id, username, email, display_name, roles, password_hash, disabled_at"
# Serialises setups: of two racing setups exactly one succeeds (contract 3.2).
_SETUP_LOCK = "SELECT pg_advisory_xact_lock(hashtext('threadline.setup'))"


async def any_user_exists(conn: Conn | asyncpg.Pool) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM users)"))


async def lock_setup(conn: Conn) -> None:
    await conn.execute(_SETUP_LOCK)


async def insert_user(
    conn: Conn | asyncpg.Pool,
    *,
    username: str,
    email: str,
    password_hash: str,
    display_name: str | None,
    roles: Sequence[str],
) -> asyncpg.Record:
    try:
        row = await conn.fetchrow(
            f"""
            INSERT INTO users (username, email, password_hash, display_name, roles)
            VALUES ($1, $2, $3, $4, $5)
            RETURNING {USER_COLUMNS}
            """,
            username,
            email,
            password_hash,
            display_name,
            sorted(set(roles)),
        )
    except asyncpg.UniqueViolationError as exc:
        taken = "email" if exc.constraint_name == "users_email_lower_key" else "username"
        raise Conflict(f"{taken} is already taken") from exc
    assert row is not None
    return row


async def find_for_login(pool: asyncpg.Pool, identifier: str) -> asyncpg.Record | None:
    """An email (contains ``@``) or a username, ignoring case (contract 3.4)."""
    column = "email" if "@" in identifier else "username"
    return await pool.fetchrow(
        f"SELECT {USER_COLUMNS} FROM users WHERE lower({column}) = lower($1)", identifier
    )


async def get_user(pool: asyncpg.Pool, user_id: UUID) -> asyncpg.Record | None:
    return await pool.fetchrow(f"SELECT {USER_COLUMNS} FROM users WHERE id = $1", user_id)


async def search_users(pool: asyncpg.Pool, query: str | None, limit: int) -> list[asyncpg.Record]:
    """Enabled users whose username or display name contains ``query`` (any case), by username."""
    return await pool.fetch(
        """
        SELECT id, username, display_name FROM users
        WHERE disabled_at IS NULL
          AND ($1::text IS NULL
               OR strpos(lower(username), lower($1)) > 0
               OR strpos(lower(coalesce(display_name, '')), lower($1)) > 0)
        ORDER BY lower(username), id
        LIMIT $2
        """,
        query,
        limit,
    )


async def update_password_hash(pool: asyncpg.Pool, user_id: UUID, password_hash: str) -> None:
    await pool.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash)
