"""Writing a reply's output (contract 9.5, 9.6, 6.5): flush transactions and the finish transaction.

A **flush** appends one chunk and its text to the message and writes one ``message.delta``, in one
transaction. The **finish** sets the final content, status and finish reason, marks the job ``done`` and
writes ``message.done``, ``error`` (timeout or error only), ``message.updated`` and ``thread.activity``, in
that order, in one transaction.

Both only write while the message is still ``streaming``: a job finished elsewhere (its lease lapsed and
another worker finished it as ``worker lost``) is never written twice. A cancel flag found set in the finish
transaction wins over any other outcome: the cancel endpoint answered ``cancelled`` while the message was
still streaming, so it finishes as cancelled. Lock order is message row, then job row, as in the cancel
endpoint; recovery, which finds the job row first, takes the message row with SKIP LOCKED and retries later.
"""

from __future__ import annotations

from threadline_api.assistant.batching import Batch
from threadline_api.assistant.finish import WORKER_LOST, Final, Outcome, final_state
from threadline_api.assistant.jobs import Reply
from threadline_api.assistant.prompt import build_prompt, load_chain
from threadline_api.messages.access import MESSAGE_COLUMNS
from threadline_api.messages.views import thread_activity_entry, updated_entry
from threadline_shared.db import Conn
from threadline_shared.dto.events import (
    ChatDeltaChunk,
    ErrorEvent,
    MessageDeltaEvent,
    MessageDone,
    MessageDoneEvent,
    StreamError,
)
from threadline_shared.eventlog import LogEntry, append_events
from threadline_shared.metrics import ASSISTANT_JOBS

_FLUSH = """
WITH message AS (
    UPDATE messages SET content = content || $3 WHERE id = $1 AND status = 'streaming' RETURNING id
)
INSERT INTO message_chunks (message_id, idx, content) SELECT id, $2, $3 FROM message RETURNING idx
"""
_LOCK_MESSAGE = "SELECT status, content FROM messages WHERE id = $1 FOR UPDATE"
_LOCK_MESSAGE_NOWAIT = "SELECT status, content FROM messages WHERE id = $1 FOR UPDATE SKIP LOCKED"
_JOB_FLAG = "SELECT cancel_requested FROM assistant_jobs WHERE id = $1 FOR UPDATE"
_FINAL_MESSAGE = f"""
UPDATE messages SET content = $2, status = $3, finish_reason = $4 WHERE id = $1 RETURNING {MESSAGE_COLUMNS}
"""
_JOB_DONE_AND_ACTIVITY = """
WITH job AS (
    UPDATE assistant_jobs
    SET status = 'done', finish_reason = $2, finished_at = now(), lease_expires_at = NULL
    WHERE id = $1
)
SELECT last_activity_at FROM threads WHERE root_id = $3
"""
_TAKE_EXPIRED = """
SELECT j.id AS job_id, j.conversation_id, m.id AS message_id, m.root_id, m.parent_id, m.depth,
       m.path::text AS path
FROM assistant_jobs j JOIN messages m ON m.id = j.assistant_message_id
WHERE j.status = 'running' AND j.lease_expires_at < now()
ORDER BY j.lease_expires_at
LIMIT 1
FOR UPDATE OF j SKIP LOCKED
"""


async def flush(conn: Conn, reply: Reply, batch: Batch) -> bool:
    """Write one batch; False when the message is no longer streaming (nothing is written then)."""
    async with conn.transaction():
        if await conn.fetchval(_FLUSH, reply.message_id, batch.idx, batch.text) is None:
            return False
        chunk = ChatDeltaChunk.for_flush(
            message_id=reply.message_id,
            root_id=reply.root_id,
            conversation_id=reply.conversation_id,
            parent_id=reply.parent_id,
            depth=reply.depth,
            idx=batch.idx,
            content=batch.text,
        )
        await append_events(conn, reply.conversation_id, [LogEntry(MessageDeltaEvent(payload=chunk))])
    return True


async def finish(conn: Conn, reply: Reply, outcome: Outcome, *, prompt_words: int) -> Final | None:
    """The finish transaction; None when the message was already finished elsewhere."""
    async with conn.transaction():
        message = await conn.fetchrow(_LOCK_MESSAGE, reply.message_id)
        if message is None or message["status"] != "streaming":
            return None
        final = await _write_final(conn, reply, outcome, message["content"], prompt_words)
    ASSISTANT_JOBS.labels(final.finish_reason.value).inc()
    return final


class RecoveryBusy(Exception):
    """An expired job's message is locked right now (a flush or a cancel is in flight); try again later."""


async def recover_expired(conn: Conn, *, system_prompt: str = "") -> Reply | None:
    """Finish one running job whose lease lapsed as an error with ``worker lost`` (9.2); None when there is
    none. Generation is never restarted: the text streamed so far stays, with the error suffix."""
    async with conn.transaction():
        job = await conn.fetchrow(_TAKE_EXPIRED)
        if job is None:
            return None
        reply = Reply(
            job["job_id"], job["conversation_id"], job["message_id"], job["root_id"], job["parent_id"],
            job["depth"],
        )  # fmt: skip
        message = await conn.fetchrow(_LOCK_MESSAGE_NOWAIT, reply.message_id)
        if message is None:
            raise RecoveryBusy(str(reply.job_id))
        trigger_path = job["path"].rsplit(".", 1)[0]
        prompt = build_prompt(await load_chain(conn, trigger_path), system_prompt)
        if message["status"] == "streaming":
            final = await _write_final(
                conn, reply, Outcome.failed(WORKER_LOST), message["content"], prompt.word_count()
            )
        else:  # the message was finished but its job was not marked done: finish only the job
            await conn.execute(_JOB_DONE_AND_ACTIVITY, reply.job_id, "error", reply.root_id)
            return reply
    ASSISTANT_JOBS.labels(final.finish_reason.value).inc()
    return reply


async def _write_final(conn: Conn, reply: Reply, outcome: Outcome, text: str, prompt_words: int) -> Final:
    if await conn.fetchval(_JOB_FLAG, reply.job_id):
        outcome = Outcome.cancelled()
    final = final_state(outcome, text, prompt_words=prompt_words)
    row = await conn.fetchrow(
        _FINAL_MESSAGE, reply.message_id, final.content, final.status.value, final.finish_reason.value
    )
    assert row is not None
    last_activity = await conn.fetchval(
        _JOB_DONE_AND_ACTIVITY, reply.job_id, final.finish_reason.value, reply.root_id
    )
    done = MessageDone(
        message_id=reply.message_id,
        root_id=reply.root_id,
        conversation_id=reply.conversation_id,
        finish_reason=final.finish_reason,
        usage=final.usage,
    )
    entries = [LogEntry(MessageDoneEvent(payload=done))]
    if final.failure is not None:
        error = StreamError(
            code=final.failure.code, message=final.failure.message, message_id=reply.message_id
        )
        entries.append(LogEntry(ErrorEvent(payload=error)))
    entries += [updated_entry(row), thread_activity_entry(reply.root_id, last_activity)]
    await append_events(conn, reply.conversation_id, entries)
    return final
