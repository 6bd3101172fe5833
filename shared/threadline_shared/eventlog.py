"""The event-log writer: the only place durable events are written (contract 6.4, DESIGN 2).

Call :func:`append_events` inside the transaction that changes state. It calls the database's
``tl_append_events`` (db migration 0002), which takes the conversation's next sequence numbers with
``UPDATE conversations SET last_seq = last_seq + n ... RETURNING`` (the row lock held to commit serialises
writers of one conversation, so numbers are gapless and commit-ordered), inserts the rows with the envelope
JSON encoded once, and queues ``NOTIFY tl_events, '<conversation_id>:<top seq>'``, which PostgreSQL delivers
on commit and drops on rollback. The notification carries ids only, never rows. A post writes its events
with the same function, from inside ``tl_post_message``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from threadline_shared.db import Conn

EVENTS_CHANNEL = "tl_events"

# One round trip: the database's own writer (db migration 0002), which tl_post_message uses as well.
_APPEND = "SELECT tl_append_events($1, $2::text[], $3::text[], $4::uuid[], $5, $6)"


class EventLike(Protocol):
    """A stream event envelope (``threadline_shared.dto.events``): its ``type`` and its JSON."""

    @property
    def type(self) -> str: ...

    def to_json(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One durable event for the log; ``audience_user_id`` None means every participant."""

    event: EventLike
    audience_user_id: UUID | None = None


class ConversationNotFound(LookupError):
    """The conversation to append to does not exist."""


def notify_payload(conversation_id: UUID, top_seq: int) -> str:
    return f"{conversation_id}:{top_seq}"


def parse_notify_payload(payload: str) -> tuple[UUID, int]:
    """Inverse of :func:`notify_payload`; raises ValueError on anything else."""
    conversation, _, seq = payload.partition(":")
    return UUID(conversation), int(seq)


async def append_events(
    conn: Conn, conversation_id: UUID, entries: Sequence[LogEntry], *, activity_at: datetime | None = None
) -> list[int]:
    """Append ``entries`` in order with consecutive sequence numbers; return those numbers.

    Must run inside the caller's transaction: the events commit (and the doorbell rings) with the state change
    or not at all. ``activity_at`` also moves the conversation's ``last_activity_at`` forward (a new message),
    in the same statement.
    """
    if not entries:
        return []
    if not conn.is_in_transaction():
        raise RuntimeError("append_events must run inside the transaction of the state change")
    top: int | None = await conn.fetchval(
        _APPEND,
        conversation_id,
        [str(entry.event.type) for entry in entries],
        [entry.event.to_json().decode() for entry in entries],
        [entry.audience_user_id for entry in entries],
        EVENTS_CHANNEL,
        activity_at,
    )
    if top is None:
        raise ConversationNotFound(str(conversation_id))
    return list(range(top - len(entries) + 1, top + 1))
