"""Assistant jobs in PostgreSQL (contract 9.2): claiming, leases and cancel flags.

A job goes ``queued`` → ``running`` → ``done``. :func:`claim_next` is the job-start transaction of 6.5: it
takes the oldest queued job ``FOR UPDATE SKIP LOCKED`` (so concurrent workers never take the same one),
creates the assistant message (role ``assistant``, no author, ``streaming``, empty, a reply to the triggering
message), writes ``message.created`` and one ``unread.update`` per participant, reads the prompt chain as it
is at job start, and marks the job ``running`` under a lease. The worker renews its leases every third of
the lease; a job whose lease lapsed is finished by any worker as ``worker lost`` (:mod:`.output`).
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from threadline_api.assistant.prompt import Prompt, build_prompt, load_chain
from threadline_api.messages import unread
from threadline_api.messages.access import MESSAGE_COLUMNS
from threadline_api.messages.views import created_entry, unread_entry
from threadline_shared.db import Conn
from threadline_shared.dto.messages import MAX_THREAD_DEPTH
from threadline_shared.eventlog import LogEntry, append_events
from threadline_shared.ids import path_label, uuid7

JOBS_CHANNEL = "tl_jobs"
CANCEL_CHANNEL = "tl_cancel"

_TAKE_QUEUED = """
SELECT j.id AS job_id, j.conversation_id, m.id AS trigger_id, m.root_id, m.path::text AS path, m.depth,
       m.content, m.deleted_at
FROM assistant_jobs j JOIN messages m ON m.id = j.trigger_message_id
WHERE j.status = 'queued'
ORDER BY j.created_at, j.id
LIMIT 1
FOR UPDATE OF j SKIP LOCKED
"""
_INSERT_REPLY = f"""
INSERT INTO messages (id, conversation_id, root_id, parent_id, author_user_id, role, content, path, depth,
                      status)
VALUES ($1, $2, $3, $4, NULL, 'assistant', '', $5::ltree, $6, 'streaming')
RETURNING {MESSAGE_COLUMNS}
"""
# The thread's row, then the conversation's (the order every post takes them in, db migrations 0002-0003):
# the conversation's update waits for the thread's (a one-time filter on it), where an unreferenced CTE ran
# after it, and a post holding the thread while it waited for the conversation closed a lock cycle.
_TOUCH_THREAD = """
WITH thread AS (
    UPDATE threads SET last_activity_at = greatest(last_activity_at, $3), message_count = message_count + 1
    WHERE root_id = $2
    RETURNING root_id
)
UPDATE conversations SET last_activity_at = greatest(last_activity_at, $3)
WHERE id = $1 AND EXISTS (SELECT FROM thread)
"""
_START = """
UPDATE assistant_jobs
SET status = 'running', assistant_message_id = $2, worker_id = $3, started_at = now(),
    lease_expires_at = now() + make_interval(secs => $4)
WHERE id = $1
"""
_SKIP = """
UPDATE assistant_jobs SET status = 'done', finish_reason = 'error', finished_at = now() WHERE id = $1
"""
_RENEW = """
UPDATE assistant_jobs SET lease_expires_at = now() + make_interval(secs => $3)
WHERE id = ANY($1::uuid[]) AND worker_id = $2 AND status = 'running'
RETURNING id
"""
_CANCEL_REQUESTED = """
SELECT id FROM assistant_jobs WHERE id = ANY($1::uuid[]) AND cancel_requested
"""


@dataclass(frozen=True, slots=True)
class Reply:
    """The assistant message a job writes, with what its deltas and events carry."""

    job_id: UUID
    conversation_id: UUID
    message_id: UUID
    root_id: UUID
    parent_id: UUID
    depth: int


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    reply: Reply
    prompt: Prompt
    trigger_content: str | None
    """The triggering message's content, None when it was deleted before the job started."""


async def claim_next(
    conn: Conn, *, worker_id: str, lease_seconds: float, system_prompt: str, unread_fanout_max: int
) -> ClaimedJob | None:
    """Start the oldest queued job (the job-start transaction of 6.5); None when no job is queued."""
    async with conn.transaction():
        while True:
            job = await conn.fetchrow(_TAKE_QUEUED)
            if job is None:
                return None
            if job["depth"] < MAX_THREAD_DEPTH:
                break
            # Posting never enqueues at depth 64 (9.1); a job that got there anyway has nowhere to reply.
            await conn.execute(_SKIP, job["job_id"])
        message_id = uuid7()
        conversation_id, root_id = job["conversation_id"], job["root_id"]
        row = await conn.fetchrow(
            _INSERT_REPLY,
            message_id,
            conversation_id,
            root_id,
            job["trigger_id"],
            f"{job['path']}.{path_label(message_id)}",
            job["depth"] + 1,
        )
        assert row is not None
        await conn.execute(_TOUCH_THREAD, conversation_id, root_id, row["created_at"])
        entries: list[LogEntry] = [created_entry(row)]
        if await unread.active_participant_count(conn, conversation_id) <= unread_fanout_max:
            counts = await unread.counts_for_participants(conn, conversation_id, root_id, excluding=[])
            entries += [unread_entry(user_id, root_id, count) for user_id, count in counts]
        await append_events(conn, conversation_id, entries)
        chain = await load_chain(conn, job["path"])
        await conn.execute(_START, job["job_id"], message_id, worker_id, lease_seconds)
    reply = Reply(job["job_id"], conversation_id, message_id, root_id, job["trigger_id"], job["depth"] + 1)
    trigger_content = job["content"] if job["deleted_at"] is None else None
    return ClaimedJob(reply, build_prompt(chain, system_prompt), trigger_content)


async def renew_leases(conn: Conn, job_ids: list[UUID], *, worker_id: str, lease_seconds: float) -> set[UUID]:
    """Extend the leases of this worker's running jobs; the ids still held (a missing one was taken over)."""
    if not job_ids:
        return set()
    rows = await conn.fetch(_RENEW, job_ids, worker_id, lease_seconds)
    return {row["id"] for row in rows}


async def cancel_requested(conn: Conn, job_ids: list[UUID]) -> set[UUID]:
    """The jobs among ``job_ids`` whose cancel flag is set."""
    if not job_ids:
        return set()
    rows = await conn.fetch(_CANCEL_REQUESTED, job_ids)
    return {row["id"] for row in rows}
