"""Posting a root or a reply (contract 5.3, 6.5, 9.1): one transaction writes the message, the thread summary,
the author's watermark, the durable events in the contract's order, and the assistant job when one is due:
one statement for the write, one for the unread counts, one for the events (and one for a job)."""

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

# One statement writes the message and everything the write itself changes, and reads the facts the events
# need, all in the transaction's snapshot: the conversation's flags and active participants (read as before
# the insert), the message row, its thread (a new one for a root, else its activity and count moved
# forward), and the author's read watermark (posting marks the thread read for the author, 5.8). Measured
# (bench/api_posts.py): each statement of a post is a round trip that cost the api about 0.17 ms of CPU.
# The unread counts stay a statement of their own: concurrent replies to a thread queue on its row's lock
# here, and only a statement that starts after that wait sees the messages committed meanwhile (READ
# COMMITTED), which the counts need (test_after_concurrent_posts_the_last_unread_update_is_the_current_count).
_WRITE = """
WITH facts AS (
    SELECT assistant_replies,
           (SELECT count(*) FROM participants WHERE conversation_id = $2 AND left_at IS NULL) AS participants
    FROM conversations WHERE id = $2
), message AS (
    INSERT INTO messages (id, conversation_id, root_id, parent_id, author_user_id, role, content, path, depth)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8::ltree, $9)
    RETURNING {columns}
), thread AS (
    {thread}
), watermark AS (
    INSERT INTO read_watermarks (user_id, root_id, conversation_id, read_at)
    SELECT $5, $3, $2, m.created_at FROM message m WHERE $5::uuid IS NOT NULL
    ON CONFLICT (user_id, root_id) DO UPDATE SET read_at = greatest(read_watermarks.read_at, EXCLUDED.read_at)
)
SELECT m.*, t.thread_created_at, t.thread_last_activity_at, t.thread_message_count,
       f.assistant_replies, f.participants
FROM message m, thread t, facts f
"""
_WRITE_ROOT = _WRITE.format(
    columns=MESSAGE_COLUMNS,
    thread="""INSERT INTO threads (root_id, conversation_id, created_at, last_activity_at, message_count)
    SELECT $3, $2, m.created_at, m.created_at, 1 FROM message m
    RETURNING created_at AS thread_created_at, last_activity_at AS thread_last_activity_at,
              message_count AS thread_message_count""",
)
_WRITE_REPLY = _WRITE.format(
    columns=MESSAGE_COLUMNS,
    thread="""UPDATE threads
    SET last_activity_at = greatest(threads.last_activity_at, m.created_at), message_count = message_count + 1
    FROM message m WHERE threads.root_id = $3
    RETURNING threads.created_at AS thread_created_at, threads.last_activity_at AS thread_last_activity_at,
              threads.message_count AS thread_message_count""",
)


_ENQUEUE = """
WITH job AS (
    INSERT INTO assistant_jobs (conversation_id, trigger_message_id) VALUES ($1, $2) RETURNING id
)
SELECT id, pg_notify($3, id::text) FROM job
"""


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
    unread_fanout_max: int,
) -> Posted:
    """Write a new message and everything it causes. Must run inside a transaction."""
    message_id = uuid7()
    if parent is None:
        root_id, parent_id, path, depth = message_id, None, path_label(message_id), 1
    else:
        root_id, parent_id = parent["root_id"], parent["id"]
        path, depth = f"{parent['path']}.{path_label(message_id)}", parent["depth"] + 1
    row = await conn.fetchrow(
        _WRITE_ROOT if parent is None else _WRITE_REPLY,
        message_id, conversation_id, root_id, parent_id, author_id, role, content, path, depth,
    )  # fmt: skip
    assert row is not None  # the caller is a participant, so the conversation and the thread exist
    created_at, participants = row["created_at"], int(row["participants"])
    entries: list[LogEntry] = []
    if parent is None:
        summary_row = {
            "root_id": root_id,
            "root_content": content,
            "root_deleted_at": None,
            "root_author": author_id,
            "created_at": row["thread_created_at"],
            "last_activity_at": row["thread_last_activity_at"],
            "message_count": row["thread_message_count"],
        }
        entries.append(thread_new_entry(thread_summary(summary_row, participants), conversation_id))
    entries += [created_entry(row), thread_activity_entry(root_id, row["thread_last_activity_at"])]
    if participants <= unread_fanout_max:  # above the cap: no per-user unread.update (6.5)
        others = await unread.counts_for_participants(
            conn, conversation_id, root_id, excluding=[author_id] if author_id else []
        )
        entries += [unread_entry(user_id, root_id, count) for user_id, count in others]
    await append_events(conn, conversation_id, entries, activity_at=created_at)
    job_id = None
    if row["assistant_replies"] and role == "user" and author_id is not None and depth < MAX_DEPTH:
        job_id = await conn.fetchval(_ENQUEUE, conversation_id, message_id, JOBS_CHANNEL)
    return Posted(row, job_id)
