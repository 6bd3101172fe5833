"""Conversation steps over the API (each asserting its success status), and rows written below the API for
what section 4 reads but does not write (messages, read watermarks, the event log).

Conversation, membership and message times are the database's ``now()`` (contract 1.3), not the api's fake
clock (which only invites follow): tests pick message times relative to ``db_now`` or ``joined_at``."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from tests.support.api import Api, Persona
from threadline_shared.ids import path_label, uuid7


async def create_conversation(api: Api, owner: Persona, title: str = "Plans", **fields: Any) -> str:
    response = await api.post("/api/conversations", owner, json={"title": title, **fields})
    assert response.status_code == 201, response.text
    conversation_id: str = response.json()["conversation_id"]
    return conversation_id


async def add_participant(
    api: Api, caller: Persona, conversation_id: str, user: Persona, role: str = "member"
) -> None:
    response = await api.post(
        f"/api/conversations/{conversation_id}/participants",
        caller,
        json={"user_id": str(user.id), "role": role},
    )
    assert response.status_code == 204, response.text


async def remove_participant(api: Api, caller: Persona, conversation_id: str, user: Persona) -> None:
    response = await api.delete(f"/api/conversations/{conversation_id}/participants/{user.id}", caller)
    assert response.status_code == 204, response.text


async def create_invite(
    api: Api, caller: Persona, conversation_id: str, email: str = "guest@example.com", **fields: Any
) -> str:
    response = await api.post(
        f"/api/conversations/{conversation_id}/invites", caller, json={"email": email, **fields}
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


async def view(api: Api, caller: Persona, conversation_id: str) -> dict[str, Any]:
    response = await api.get(f"/api/conversations/{conversation_id}", caller)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def roles_of(api: Api, caller: Persona, conversation_id: str) -> dict[str, str]:
    """``{username: role}`` of the conversation's active participants."""
    return {p["username"]: p["role"] for p in (await view(api, caller, conversation_id))["participants"]}


async def db_now(pool: asyncpg.Pool) -> datetime:
    """The database's clock: ``now()`` of a transaction of its own, so a request sent after this reading has a
    later ``now()``, one sent before it an earlier one."""
    now: datetime = await pool.fetchval("SELECT now()")
    return now


async def joined_at(pool: asyncpg.Pool, conversation_id: str, user_id: UUID) -> datetime:
    """``joined_at`` of the user's current membership, as stored."""
    joined: datetime | None = await pool.fetchval(
        "SELECT joined_at FROM participants WHERE conversation_id = $1 AND user_id = $2 AND left_at IS NULL",
        UUID(conversation_id),
        user_id,
    )
    assert joined is not None, "not an active participant"
    return joined


async def insert_message(
    pool: asyncpg.Pool,
    conversation_id: str,
    author: UUID | None,
    created_at: datetime,
    *,
    root: UUID | None = None,
    deleted: bool = False,
) -> UUID:
    """A message row as the posting code writes it: a root (with its thread) or a reply to ``root``.

    ``created_at`` stands for the database time the message was posted at: derive it from ``db_now`` or
    ``joined_at`` (the times unread counts compare it with), never from the api's fake clock."""
    message_id = uuid7()
    if root is None:
        root_id, parent_id, path, depth = message_id, None, path_label(message_id), 1
    else:
        root_id, parent_id, path, depth = root, root, f"{path_label(root)}.{path_label(message_id)}", 2
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """
            INSERT INTO messages (id, conversation_id, root_id, parent_id, author_user_id, role, content,
                                  path, depth, created_at, deleted_at)
            VALUES ($1, $2, $3, $4, $5, $6, 'hello', $7::ltree, $8, $9, $10)
            """,
            message_id,
            UUID(conversation_id),
            root_id,
            parent_id,
            author,
            "user" if author is not None else "assistant",
            path,
            depth,
            created_at,
            created_at if deleted else None,
        )
        if root is None:
            await conn.execute(
                """
                INSERT INTO threads (root_id, conversation_id, created_at, last_activity_at)
                VALUES ($1, $2, $3, $3)
                """,
                message_id,
                UUID(conversation_id),
                created_at,
            )
        else:  # written past the api: the thread's cached unread counts are void (db migration 0002)
            void = "UPDATE threads SET unread_version = unread_version + 1 WHERE root_id = $1"
            await conn.execute(void, root)
    return message_id


async def event_rows(pool: asyncpg.Pool, conversation_id: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT seq, type, envelope, audience_user_id FROM event_log WHERE conversation_id = $1 ORDER BY seq",
        UUID(conversation_id),
    )
