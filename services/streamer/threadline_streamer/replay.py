"""Replay on (re)connect (contract 6.6): every visible durable event after the cursor, in sequence order, or
``resync_required`` when the cursor is beyond what the log still holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID

import asyncpg
import orjson

from threadline_streamer.cursor import AfterSeq, Cursor, SinceTime

REPLAY_BATCH = 2000

_HORIZON = "SELECT last_seq, pruned_seq, pruned_at FROM conversations WHERE id = $1"
_AFTER_SEQ = """
SELECT c.pruned_seq, e.seq, e.type, e.envelope
FROM conversations c
LEFT JOIN LATERAL (
    SELECT seq, type, envelope FROM event_log
    WHERE conversation_id = c.id AND seq > $2
      AND (audience_user_id IS NULL OR audience_user_id = $3) AND created_at >= $4
    ORDER BY seq
    LIMIT $5
) e ON true
WHERE c.id = $1
ORDER BY e.seq
"""
"""The events and the prune horizon in one statement, so in one snapshot: a prune deletes its rows and moves
the horizon in one transaction, so the horizon read with the rows tells whether any were missing."""
_FIRST_SINCE = """
SELECT coalesce(min(seq) - 1, -1) FROM event_log WHERE conversation_id = $1 AND created_at > $2
"""


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    """``after``: replay events with seq > after; ``resync``: send resync_required instead."""

    after: int | None
    resync: bool


async def plan(pool: asyncpg.Pool, conversation_id: UUID, cursor: Cursor) -> ReplayPlan:
    if cursor is None:
        return ReplayPlan(None, False)
    row = await pool.fetchrow(_HORIZON, conversation_id)
    assert row is not None  # the caller is a participant, so the conversation exists
    if isinstance(cursor, AfterSeq):
        if cursor.seq > row["last_seq"] or cursor.seq < row["pruned_seq"]:
            return ReplayPlan(None, True)
        return ReplayPlan(cursor.seq, False)
    assert isinstance(cursor, SinceTime)
    if row["pruned_at"] is not None and cursor.at < row["pruned_at"]:
        return ReplayPlan(None, True)
    first = await pool.fetchval(_FIRST_SINCE, conversation_id, cursor.at)
    return ReplayPlan(row["last_seq"] if first < 0 else first, False)


@dataclass(frozen=True, slots=True)
class Batch:
    """``rows``: visible events after the cursor (seq, type, envelope), in order; ``behind_horizon``: a prune
    removed events after the cursor since the plan was made (send resync_required instead of a gap)."""

    rows: list[asyncpg.Record]
    behind_horizon: bool


async def events_after(
    pool: asyncpg.Pool, conversation_id: UUID, after: int, user_id: UUID, joined_at: datetime
) -> Batch:
    """One batch of visible events after ``after`` (audience all or the user; not before they joined)."""
    rows = await pool.fetch(_AFTER_SEQ, conversation_id, after, user_id, joined_at, REPLAY_BATCH)
    if not rows or rows[0]["pruned_seq"] > after:
        return Batch([], bool(rows))
    return Batch([row for row in rows if row["seq"] is not None], False)


def removed_user(envelope: str | bytes) -> UUID | None:
    """The user a ``membership.changed`` envelope removes, None for any other change."""
    payload = orjson.loads(envelope)["payload"]
    return UUID(payload["user_id"]) if payload.get("action") == "removed" else None


class _Row(Protocol):
    def __getitem__(self, key: str, /) -> Any: ...


R = TypeVar("R", bound=_Row)


def until_removed(rows: Sequence[R], user_id: UUID) -> tuple[list[R], bool]:
    """``rows`` up to and including ``user_id``'s own removal, and whether it was among them: a member removed
    while their stream resumed gets the removal and nothing after it, as on the live path (4.3 step 6)."""
    for index, row in enumerate(rows):
        if row["type"] == "membership.changed" and removed_user(row["envelope"]) == user_id:
            return list(rows[: index + 1]), True
    return list(rows), False
