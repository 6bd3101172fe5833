"""Message rows as contract DTOs (5.1) and the durable event envelopes built from them (6.3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from threadline_shared.dto.events import (
    MessageCreatedEvent,
    MessageUpdatedEvent,
    ThreadActivity,
    ThreadActivityEvent,
    UnreadUpdate,
    UnreadUpdateEvent,
)
from threadline_shared.dto.messages import MessageView, ThreadSummary
from threadline_shared.eventlog import LogEntry

EXCERPT_CHARS = 240


def message_view(row: asyncpg.Record) -> MessageView:
    """Deleted messages keep their place with ``content: ""`` and ``deleted_at`` (5.4)."""
    deleted = row["deleted_at"] is not None
    return MessageView(
        id=row["id"],
        root_id=row["root_id"],
        parent_id=row["parent_id"],
        conversation_id=row["conversation_id"],
        author_user_id=row["author_user_id"],
        role=row["role"],
        content="" if deleted else row["content"],
        path=row["path"],
        depth=row["depth"],
        created_at=row["created_at"],
        edited_at=row["edited_at"],
        deleted_at=row["deleted_at"],
        status=row["status"],
    )


def excerpt(content: str, deleted: bool) -> str:
    return "" if deleted else content.strip()[:EXCERPT_CHARS]


def thread_summary(row: Mapping[str, Any] | asyncpg.Record, participant_count: int) -> ThreadSummary:
    """``row`` joins threads with the root message (root_content, root_deleted_at, root_author)."""
    return ThreadSummary(
        root_id=row["root_id"],
        root_excerpt=excerpt(row["root_content"], row["root_deleted_at"] is not None),
        root_author=row["root_author"],
        created_at=row["created_at"],
        last_activity_at=row["last_activity_at"],
        message_count=row["message_count"],
        participant_count=participant_count,
    )


def created_entry(row: asyncpg.Record) -> LogEntry:
    return LogEntry(MessageCreatedEvent(payload=message_view(row)))


def updated_entry(row: asyncpg.Record) -> LogEntry:
    return LogEntry(MessageUpdatedEvent(payload=message_view(row)))


def thread_activity_entry(root_id: object, last_activity_at: object) -> LogEntry:
    return LogEntry(
        ThreadActivityEvent(payload=ThreadActivity(root_id=root_id, last_activity_at=last_activity_at))
    )


def unread_entry(user_id: object, root_id: object, unread: int) -> LogEntry:
    event = UnreadUpdateEvent(payload=UnreadUpdate(root_id=root_id, unread=unread))
    return LogEntry(event, audience_user_id=user_id)  # type: ignore[arg-type]
