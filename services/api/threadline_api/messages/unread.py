"""Read watermarks and unread counts (contract 5.8).

The unread count of thread T for user U counts T's messages that are not deleted, not authored by U, newer
than U's current ``joined_at`` and newer than U's watermark (if any). Every function here is one query.

A thread's counts come from the database's ``tl_unread_counts`` (db migration 0002), which a post uses too.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from threadline_shared.db import Conn

# The database's own count (db migration 0002), which tl_post_message uses as well.
_COUNT_FOR_PARTICIPANTS = "SELECT user_id, unread FROM tl_unread_counts($1, $2, $3::uuid[]) ORDER BY user_id"
_COUNT_FOR_USER = """
SELECT unread FROM tl_unread_counts(
    $1, $2,
    ARRAY(SELECT user_id FROM participants WHERE conversation_id = $1 AND left_at IS NULL AND user_id <> $3)
)
"""

_SUMMARY = """
SELECT m.root_id, count(*) AS unread
FROM messages m
JOIN participants p ON p.conversation_id = m.conversation_id AND p.user_id = $2 AND p.left_at IS NULL
LEFT JOIN read_watermarks w ON w.user_id = $2 AND w.root_id = m.root_id
WHERE m.conversation_id = $1 AND m.deleted_at IS NULL
  AND m.author_user_id IS DISTINCT FROM $2
  AND m.created_at > p.joined_at
  AND (w.read_at IS NULL OR m.created_at > w.read_at)
GROUP BY m.root_id
ORDER BY m.root_id DESC
"""

_MOVE_WATERMARK = """
INSERT INTO read_watermarks (user_id, root_id, conversation_id, read_at)
VALUES ($1, $2, $3, $4)
ON CONFLICT (user_id, root_id) DO UPDATE SET read_at = greatest(read_watermarks.read_at, EXCLUDED.read_at)
"""


async def counts_for_participants(
    conn: Conn | asyncpg.Pool, conversation_id: UUID, root_id: UUID, *, excluding: list[UUID]
) -> list[tuple[UUID, int]]:
    """(user_id, unread) of every active participant not in ``excluding``, by user id."""
    rows = await conn.fetch(_COUNT_FOR_PARTICIPANTS, conversation_id, root_id, excluding)
    return [(row["user_id"], row["unread"]) for row in rows]


async def count_for_user(
    conn: Conn | asyncpg.Pool, conversation_id: UUID, root_id: UUID, user_id: UUID
) -> int:
    """The user's unread count of the thread; 0 when not an active participant. The others are excluded, so
    that the thread is read from this user's bound, not from the lowest of all."""
    count: int | None = await conn.fetchval(_COUNT_FOR_USER, conversation_id, root_id, user_id)
    return count or 0


async def summary(conn: Conn | asyncpg.Pool, conversation_id: UUID, user_id: UUID) -> list[tuple[UUID, int]]:
    """Threads with unread > 0 for the user, newest thread (root id) first."""
    rows = await conn.fetch(_SUMMARY, conversation_id, user_id)
    return [(row["root_id"], row["unread"]) for row in rows]


async def move_watermark(
    conn: Conn, user_id: UUID, root_id: UUID, conversation_id: UUID, read_at: datetime
) -> None:
    """The watermark only moves forward: stored value becomes max(old, new)."""
    await conn.execute(_MOVE_WATERMARK, user_id, root_id, conversation_id, read_at)


async def active_participant_count(conn: Conn | asyncpg.Pool, conversation_id: UUID) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM participants WHERE conversation_id = $1 AND left_at IS NULL", conversation_id
    )
    return count
