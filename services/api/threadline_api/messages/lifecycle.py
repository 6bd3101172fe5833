"""Edit, delete (a tombstone that keeps its place) and restore (contract 5.6). Each change writes one
``message.updated``; no-ops write nothing; none of them moves thread activity or unread counts' events."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from threadline_api.messages.access import MESSAGE_COLUMNS
from threadline_api.messages.views import updated_entry
from threadline_shared.db import Conn
from threadline_shared.errors import Conflict
from threadline_shared.eventlog import append_events

# NO KEY UPDATE: no change here touches the message's key, and the lock leaves a reply's or an assistant
# job's foreign-key check (KEY SHARE) on it free. A delete or restore then locks the thread row (db migration
# 0002's trigger voids its cached unread counts), which those take before or after the message: with FOR
# UPDATE the two could deadlock.
_LOCK = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1 FOR NO KEY UPDATE"


async def _locked(conn: Conn, message_id: UUID) -> asyncpg.Record:
    row = await conn.fetchrow(_LOCK, message_id)
    assert row is not None  # messages are never removed
    return row


async def edit(conn: Conn, message_id: UUID, editor: UUID, content: str, reason: str | None) -> None:
    row = await _locked(conn, message_id)
    if row["deleted_at"] is not None:
        raise Conflict("a deleted message cannot be edited")
    if row["status"] == "streaming":
        raise Conflict("a streaming message cannot be edited")
    updated = await conn.fetchrow(
        f"""
        UPDATE messages SET content = $2, edited_at = now(), edited_by = $3, edit_reason = $4
        WHERE id = $1 RETURNING {MESSAGE_COLUMNS}
        """,
        message_id,
        content,
        editor,
        reason,
    )
    assert updated is not None
    await append_events(conn, row["conversation_id"], [updated_entry(updated)])


async def delete(conn: Conn, message_id: UUID, deleter: UUID, reason: str | None) -> None:
    row = await _locked(conn, message_id)
    if row["status"] == "streaming":
        raise Conflict("a streaming message cannot be deleted")
    if row["deleted_at"] is not None:
        return
    updated = await conn.fetchrow(
        f"""
        UPDATE messages SET deleted_at = now(), deleted_by = $2, delete_reason = $3
        WHERE id = $1 RETURNING {MESSAGE_COLUMNS}
        """,
        message_id,
        deleter,
        reason,
    )
    assert updated is not None
    await append_events(conn, row["conversation_id"], [updated_entry(updated)])


async def restore(conn: Conn, message_id: UUID) -> None:
    row = await _locked(conn, message_id)
    if row["deleted_at"] is None:
        return
    updated = await conn.fetchrow(
        f"""
        UPDATE messages SET deleted_at = NULL, deleted_by = NULL, delete_reason = NULL
        WHERE id = $1 RETURNING {MESSAGE_COLUMNS}
        """,
        message_id,
    )
    assert updated is not None
    await append_events(conn, row["conversation_id"], [updated_entry(updated)])
