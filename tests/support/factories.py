"""Named personas and rows for tests that run below the HTTP API (plain SQL, like the repositories)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

# A valid Argon2id PHC string of no particular password; these users never log in.
_UNUSABLE_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"


async def create_user(conn: asyncpg.Connection | asyncpg.Pool, username: str, *, admin: bool = False) -> UUID:
    roles = ["admin", "member"] if admin else ["member"]
    user_id: UUID = await conn.fetchval(
        "INSERT INTO users (username, email, password_hash, roles) VALUES ($1, $2, $3, $4) RETURNING id",
        username,
        f"{username}@example.com",
        _UNUSABLE_HASH,
        roles,
    )
    return user_id


async def create_conversation(
    conn: asyncpg.Connection | asyncpg.Pool, owner: UUID, title: str = "Plans"
) -> UUID:
    conversation_id: UUID = await conn.fetchval(
        "INSERT INTO conversations (title, assistant_replies, created_by) VALUES ($1, true, $2) RETURNING id",
        title,
        owner,
    )
    await conn.execute(
        "INSERT INTO participants (conversation_id, user_id, role) VALUES ($1, $2, 'owner')",
        conversation_id,
        owner,
    )
    return conversation_id
