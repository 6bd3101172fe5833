"""Reading threads: tree pages in path order (5.4), thread-list pages by activity (5.5), chunks (5.7)."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from threadline_api.messages.access import MESSAGE_COLUMNS
from threadline_shared.errors import InvalidRequest

PATH_GRAMMAR = re.compile(r"^m[0-9a-f]{32}(\.m[0-9a-f]{32}){0,63}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Without a cursor the pages start from a bound below every path ('' has no labels) or above every thread
# (infinity): the condition is then always an index condition, also in the generic plan PostgreSQL may pick
# for the prepared statement, where "$2 IS NULL OR ..." would read the thread from its start.
_TREE_PAGE = f"""
SELECT {MESSAGE_COLUMNS} FROM messages
WHERE root_id = $1 AND path > coalesce($2::ltree, ''::ltree)
ORDER BY messages.path  -- the ltree column (index order), not the text "path" of the select list
LIMIT $3
"""
_THREAD_PAGE = """
SELECT t.root_id, t.created_at, t.last_activity_at, t.message_count,
       r.content AS root_content, r.deleted_at AS root_deleted_at, r.author_user_id AS root_author
FROM threads t JOIN messages r ON r.id = t.root_id
WHERE t.conversation_id = $1
  AND (t.last_activity_at, t.root_id)
      < (coalesce($2::timestamptz, 'infinity'), coalesce($3::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
ORDER BY t.last_activity_at DESC, t.root_id DESC
LIMIT $4
"""
_CHUNKS = """
SELECT message_id, idx, content, created_at FROM message_chunks
WHERE message_id = $1 AND idx >= $2
ORDER BY idx
LIMIT $3
"""


def parse_cursor_path(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not PATH_GRAMMAR.fullmatch(raw):  # not match: "$" also matches before a trailing newline
        raise InvalidRequest.for_field("cursor_path", "must be a message path")
    return raw


def encode_after(last_activity_at: datetime, root_id: UUID) -> str:
    """The opaque thread-list cursor: microseconds since the epoch and the root id, base64url."""
    micros = (last_activity_at - _EPOCH) // timedelta(microseconds=1)
    return base64.urlsafe_b64encode(f"{micros}.{root_id}".encode()).rstrip(b"=").decode()


def decode_after(raw: str | None) -> tuple[datetime, UUID] | None:
    if raw is None:
        return None
    try:
        decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        micros, root = decoded.split(".", 1)
        return _EPOCH + timedelta(microseconds=int(micros)), UUID(root)
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):  # overflow: huge microseconds
        raise InvalidRequest.for_field("after", "must be a next_after value from a previous page") from None


async def tree_page(
    pool: asyncpg.Pool, root_id: UUID, cursor_path: str | None, limit: int
) -> tuple[list[asyncpg.Record], str | None]:
    """At most ``limit`` messages after ``cursor_path``, and the next cursor when more follow."""
    rows = await pool.fetch(_TREE_PAGE, root_id, cursor_path, limit + 1)
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1]["path"]
    return rows, None


async def thread_page(
    pool: asyncpg.Pool, conversation_id: UUID, after: tuple[datetime, UUID] | None, limit: int
) -> tuple[list[asyncpg.Record], str | None]:
    since, root = after if after is not None else (None, None)
    rows = await pool.fetch(_THREAD_PAGE, conversation_id, since, root, limit + 1)
    if len(rows) > limit:
        last = rows[limit - 1]
        return rows[:limit], encode_after(last["last_activity_at"], last["root_id"])
    return rows, None


async def chunks(pool: asyncpg.Pool, message_id: UUID, start: int, limit: int) -> list[asyncpg.Record]:
    return await pool.fetch(_CHUNKS, message_id, start, limit)
