"""Profiles and assignments in PostgreSQL. Every mutation also sends ``NOTIFY tl_limits`` in its transaction,
so every process reloads within a second of the commit."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from threadline_shared.db import Conn
from threadline_shared.errors import Conflict
from threadline_shared.ratelimit.rules import LIMITS_CHANNEL

PROFILE_COLUMNS = "id, name, algorithm, params, description, created_at, updated_at"
ASSIGNMENT_SELECT = """
SELECT a.id, a.profile_id, p.name AS profile_name, a.method, a.path_pattern, a.created_at, a.updated_at
FROM rate_limit_assignments a JOIN rate_limit_profiles p ON p.id = a.profile_id
"""


async def notify_change(conn: Conn) -> None:
    await conn.execute("SELECT pg_notify($1, '')", LIMITS_CHANNEL)


async def list_profiles(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch(f"SELECT {PROFILE_COLUMNS} FROM rate_limit_profiles ORDER BY name")


async def name_taken(conn: Conn | asyncpg.Pool, name: str) -> bool:
    return bool(
        await conn.fetchval("SELECT EXISTS (SELECT 1 FROM rate_limit_profiles WHERE name = $1)", name)
    )


async def insert_profile(
    conn: Conn, name: str, params: dict[str, Any], description: str | None
) -> asyncpg.Record:
    try:
        row = await conn.fetchrow(
            f"""
            INSERT INTO rate_limit_profiles (name, algorithm, params, description) VALUES ($1, 'gcra', $2, $3)
            RETURNING {PROFILE_COLUMNS}
            """,
            name,
            params,
            description,
        )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict("profile name is taken") from exc
    assert row is not None
    await notify_change(conn)
    return row


async def get_profile(conn: Conn | asyncpg.Pool, profile_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {PROFILE_COLUMNS} FROM rate_limit_profiles WHERE id = $1", profile_id)


async def update_profile(
    conn: Conn, profile_id: UUID, params: dict[str, Any], description: str | None
) -> asyncpg.Record | None:
    row = await conn.fetchrow(
        f"""
        UPDATE rate_limit_profiles SET params = $2, description = $3, updated_at = now() WHERE id = $1
        RETURNING {PROFILE_COLUMNS}
        """,
        profile_id,
        params,
        description,
    )
    if row is not None:
        await notify_change(conn)
    return row


async def delete_profile(conn: Conn, profile_id: UUID) -> bool:
    """False when no such profile; 409 while an assignment points at it."""
    try:
        deleted = await conn.fetchval(
            "DELETE FROM rate_limit_profiles WHERE id = $1 RETURNING id", profile_id
        )
    except asyncpg.IntegrityConstraintViolationError as exc:  # RESTRICT: still referenced
        raise Conflict("the profile is still assigned to routes") from exc
    if deleted is not None:
        await notify_change(conn)
    return deleted is not None


async def list_assignments(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch(f"{ASSIGNMENT_SELECT} ORDER BY a.method, a.path_pattern")


async def upsert_assignment(
    conn: Conn, profile_id: UUID, method: str, path: str
) -> tuple[asyncpg.Record, bool]:
    """The assignment of (method, path), created or pointed at ``profile_id``; True when created."""
    row = await conn.fetchrow(
        """
        INSERT INTO rate_limit_assignments (profile_id, method, path_pattern) VALUES ($1, $2, $3)
        ON CONFLICT (method, path_pattern) DO UPDATE SET profile_id = EXCLUDED.profile_id, updated_at = now()
        RETURNING id, (xmax = 0) AS created
        """,
        profile_id,
        method,
        path,
    )
    assert row is not None
    await notify_change(conn)
    assignment = await conn.fetchrow(f"{ASSIGNMENT_SELECT} WHERE a.id = $1", row["id"])
    assert assignment is not None
    return assignment, bool(row["created"])


async def delete_assignment(conn: Conn, assignment_id: UUID) -> bool:
    deleted = await conn.fetchval(
        "DELETE FROM rate_limit_assignments WHERE id = $1 RETURNING id", assignment_id
    )
    if deleted is not None:
        await notify_change(conn)
    return deleted is not None
