"""Posting a root or a reply (contract 5.3, 6.5, 9.1): one transaction writes the message, the thread summary,
the author's watermark, the durable events in the contract's order, and the assistant job when one is due."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg

from threadline_api.messages import unread
from threadline_api.messages.access import MESSAGE_COLUMNS
from threadline_api.messages.views import (
    created_entry,
    thread_activity_entry,
    thread_new_entry,
    thread_summary,
    unread_entry,
)
from threadline_shared.db import Conn
from threadline_shared.eventlog import LogEntry, append_events
from threadline_shared.ids import path_label, uuid7

MAX_DEPTH = 64
JOBS_CHANNEL = "tl_jobs"

_INSERT = f"""
INSERT INTO messages (id, conversation_id, root_id, parent_id, author_user_id, role, content, path, depth)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::ltree, $9)
RETURNING {MESSAGE_COLUMNS}
"""
_NEW_THREAD = """
INSERT INTO threads (root_id, conversation_id, created_at, last_activity_at, message_count)
VALUES ($1, $2, $3, $3, 1)
RETURNING root_id, created_at, last_activity_at, message_count
"""
_THREAD_ACTIVITY = """
UPDATE threads SET last_activity_at = greatest(last_activity_at, $2), message_count = message_count + 1
WHERE root_id = $1
RETURNING last_activity_at
"""


_FACTS = """
SELECT assistant_replies,
       (SELECT count(*) FROM participants WHERE conversation_id = $1 AND left_at IS NULL) AS participants
FROM conversations WHERE id = $1
"""
_ENQUEUE = """
WITH job AS (
    INSERT INTO assistant_jobs (conversation_id, trigger_message_id) VALUES ($1, $2) RETURNING id
)
SELECT id, pg_notify($3, id::text) FROM job
"""


async def conversation_facts(conn: Conn, conversation_id: UUID) -> tuple[bool, int]:
    """``(assistant_replies, active participants)`` of the conversation, in one query."""
    row = await conn.fetchrow(_FACTS, conversation_id)
    assert row is not None  # the caller is a participant
    return bool(row["assistant_replies"]), int(row["participants"])


@dataclass(frozen=True, slots=True)
class Posted:
    message: asyncpg.Record
    job_id: UUID | None


async def post_message(
    conn: Conn,
    *,
    conversation_id: UUID,
    author_id: UUID | None,
    parent: asyncpg.Record | None,
    content: str,
    role: str,
    assistant_replies: bool,
    participants: int,
    unread_fanout_max: int,
) -> Posted:
    """Write a new message and everything it causes. Must run inside a transaction. ``assistant_replies``
    and ``participants`` (active participants) come from :func:`conversation_facts`, read in the same
    transaction."""
    message_id = uuid7()
    if parent is None:
        root_id, parent_id, path, depth = message_id, None, path_label(message_id), 1
    else:
        root_id, parent_id = parent["root_id"], parent["id"]
        path, depth = f"{parent['path']}.{path_label(message_id)}", parent["depth"] + 1
    row = await conn.fetchrow(
        _INSERT, message_id, conversation_id, root_id, parent_id, author_id, role, content, path, depth
    )
    assert row is not None
    created_at = row["created_at"]
    entries: list[LogEntry] = []
    if parent is None:
        thread = await conn.fetchrow(_NEW_THREAD, root_id, conversation_id, created_at)
        assert thread is not None
        summary_row = {
            "root_id": root_id,
            "root_content": content,
            "root_deleted_at": None,
            "root_author": author_id,
            **{key: thread[key] for key in ("created_at", "last_activity_at", "message_count")},
        }
        entries.append(thread_new_entry(thread_summary(summary_row, participants), conversation_id))
        last_activity = thread["last_activity_at"]
    else:
        last_activity = await conn.fetchval(_THREAD_ACTIVITY, root_id, created_at)
    entries += [created_entry(row), thread_activity_entry(root_id, last_activity)]
    if author_id is not None:
        await unread.move_watermark(conn, author_id, root_id, conversation_id, created_at)
    if participants <= unread_fanout_max:  # above the cap: no per-user unread.update (6.5)
        others = await unread.counts_for_participants(
            conn, conversation_id, root_id, excluding=[author_id] if author_id else []
        )
        entries += [unread_entry(user_id, root_id, count) for user_id, count in others]
    await append_events(conn, conversation_id, entries, activity_at=created_at)
    job_id = None
    if assistant_replies and role == "user" and author_id is not None and depth < MAX_DEPTH:
        job_id = await conn.fetchval(_ENQUEUE, conversation_id, message_id, JOBS_CHANNEL)
    return Posted(row, job_id)
