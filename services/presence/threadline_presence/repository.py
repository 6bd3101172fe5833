"""The presence service's reads of PostgreSQL: memberships, thread roots and the conversations of users.

Connection failures become 503 ``database_unavailable`` here, at the repository boundary (STYLE 5).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar
from uuid import UUID

import asyncpg

from threadline_shared.db import Conn
from threadline_shared.dto.enums import ConversationRole
from threadline_shared.errors import DatabaseUnavailable

T = TypeVar("T")
Db = Conn | asyncpg.Pool

_ROLE = """
SELECT role FROM participants WHERE conversation_id = $1 AND user_id = $2 AND left_at IS NULL
"""
_PARTICIPANTS = """
SELECT user_id, role FROM participants WHERE conversation_id = $1 AND left_at IS NULL ORDER BY user_id
"""
_IS_ROOT = """
SELECT EXISTS (SELECT 1 FROM messages WHERE id = $1 AND conversation_id = $2 AND parent_id IS NULL)
"""
_CONVERSATIONS_OF = """
SELECT user_id, conversation_id FROM participants
WHERE user_id = ANY($1::uuid[]) AND left_at IS NULL
ORDER BY user_id, conversation_id
"""
DB_DOWN = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
)


async def _guarded(call: Callable[[], Awaitable[T]]) -> T:
    try:
        return await call()
    except DB_DOWN as exc:
        raise DatabaseUnavailable() from exc


async def participant_role(db: Db, conversation_id: UUID, user_id: UUID) -> ConversationRole | None:
    """The user's role in the conversation, None when not an active participant (or no such conversation)."""
    role = await _guarded(lambda: db.fetchval(_ROLE, conversation_id, user_id))
    return None if role is None else ConversationRole(role)


async def participants(db: Db, conversation_id: UUID) -> dict[UUID, ConversationRole]:
    """Every active participant and their role, by ``user_id``."""
    rows = await _guarded(lambda: db.fetch(_PARTICIPANTS, conversation_id))
    return {row["user_id"]: ConversationRole(row["role"]) for row in rows}


async def is_thread_root(db: Db, conversation_id: UUID, root_id: UUID) -> bool:
    """Whether ``root_id`` is a thread root (a message without parent) of this conversation."""
    found: bool = await _guarded(lambda: db.fetchval(_IS_ROOT, root_id, conversation_id))
    return found


async def conversations_of(db: Db, user_ids: Sequence[UUID]) -> dict[UUID, list[UUID]]:
    """The conversations each user is an active participant of (users with none map to ``[]``)."""
    result: dict[UUID, list[UUID]] = {user_id: [] for user_id in user_ids}
    rows = await _guarded(lambda: db.fetch(_CONVERSATIONS_OF, list(user_ids)))
    for row in rows:
        result[row["user_id"]].append(row["conversation_id"])
    return result
