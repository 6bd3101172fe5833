"""Who may do what in a conversation (contract 4.5): fetching a participant *and* authorising in one step."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from threadline_shared.db import Conn
from threadline_shared.errors import Forbidden, NotFound

_MEMBERSHIP = """
SELECT role, joined_at FROM participants WHERE conversation_id = $1 AND user_id = $2 AND left_at IS NULL
"""
NOT_PARTICIPANT = "not a participant of this conversation"
VIEWERS_CANNOT_WRITE = "viewers cannot write"
MESSAGE_NOT_FOUND = "message not found"
WRITER_ROLES = frozenset({"owner", "admin", "member"})
MANAGER_ROLES = frozenset({"owner", "admin"})


@dataclass(frozen=True, slots=True)
class Membership:
    user_id: UUID
    conversation_id: UUID
    role: str
    joined_at: datetime

    @property
    def is_writer(self) -> bool:
        return self.role in WRITER_ROLES

    @property
    def is_manager(self) -> bool:
        return self.role in MANAGER_ROLES


async def access_conversation(conn: Conn | asyncpg.Pool, conversation_id: UUID, user_id: UUID) -> Membership:
    """The caller's active membership; 403 when not a participant (an unknown conversation included)."""
    row = await conn.fetchrow(_MEMBERSHIP, conversation_id, user_id)
    if row is None:
        raise Forbidden(NOT_PARTICIPANT)
    return Membership(user_id, conversation_id, row["role"], row["joined_at"])


def require_writer(membership: Membership) -> None:
    if not membership.is_writer:
        raise Forbidden(VIEWERS_CANNOT_WRITE)


def require_manager(membership: Membership) -> None:
    if not membership.is_manager:
        raise Forbidden("owner or admin role required")


def require_message_permission(membership: Membership, author_user_id: UUID | None) -> None:
    """Edit or delete (5.2): the author if a writer, or an owner or admin; authorless needs owner/admin."""
    if membership.is_manager:
        return
    if author_user_id is not None and author_user_id == membership.user_id and membership.is_writer:
        return
    raise Forbidden("not allowed to change this message")


async def message_and_membership(
    conn: Conn | asyncpg.Pool, message_id: UUID, user_id: UUID
) -> tuple[asyncpg.Record, Membership]:
    """The message and the caller's active membership of its conversation, in one query: 404 when the
    message is unknown, else 403 when the caller is not a participant."""
    row = await conn.fetchrow(_MESSAGE_AND_MEMBERSHIP, message_id, user_id)
    if row is None:
        raise NotFound(MESSAGE_NOT_FOUND)
    if row["participant_role"] is None:
        raise Forbidden(NOT_PARTICIPANT)
    role, joined_at = row["participant_role"], row["participant_joined_at"]
    return row, Membership(user_id, row["conversation_id"], role, joined_at)


async def existing_root(conn: Conn | asyncpg.Pool, root_id: UUID) -> asyncpg.Record:
    """The root message of a thread; 404 when ``root_id`` is unknown or not a root."""
    row = await conn.fetchrow(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1 AND parent_id IS NULL", root_id
    )
    if row is None:
        raise NotFound("thread not found")
    return row


MESSAGE_COLUMNS = (
    "id, conversation_id, root_id, parent_id, author_user_id, role, content, path::text AS path, depth, "
    "status, created_at, edited_at, deleted_at"
)
_MESSAGE_AND_MEMBERSHIP = f"""
SELECT {", ".join(f"m.{column.strip()}" for column in MESSAGE_COLUMNS.split(","))},
       p.role AS participant_role, p.joined_at AS participant_joined_at
FROM messages m
LEFT JOIN participants p ON p.conversation_id = m.conversation_id AND p.user_id = $2 AND p.left_at IS NULL
WHERE m.id = $1
"""
