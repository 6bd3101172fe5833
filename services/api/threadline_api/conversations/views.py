"""Rows as the DTOs of contract 4.1."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from threadline_api.conversations.invites import invite_status
from threadline_shared.dto.conversations import (
    ConversationSummary,
    ConversationView,
    CreateInviteResponse,
    InviteView,
    Participant,
)
from threadline_shared.dto.enums import ConversationRole


def conversation_summary(row: asyncpg.Record) -> ConversationSummary:
    return ConversationSummary(
        id=row["id"],
        title=row["title"],
        is_group=row["is_group"],
        role=ConversationRole(row["role"]),
        created_at=row["created_at"],
        last_activity_at=row["last_activity_at"],
        unread_total=row["unread_total"],
    )


def participant(row: asyncpg.Record) -> Participant:
    return Participant(
        user_id=row["user_id"],
        username=row["username"],
        display_name=row["display_name"],
        role=ConversationRole(row["role"]),
        joined_at=row["joined_at"],
    )


def conversation_view(row: asyncpg.Record, participants: Sequence[asyncpg.Record]) -> ConversationView:
    return ConversationView(
        id=row["id"],
        title=row["title"],
        is_group=row["is_group"],
        assistant_replies=row["assistant_replies"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        last_activity_at=row["last_activity_at"],
        role=ConversationRole(row["role"]),
        unread_total=row["unread_total"],
        participants=[participant(p) for p in participants],
    )


def created_invite(row: asyncpg.Record) -> CreateInviteResponse:
    return CreateInviteResponse(token=row["token"], expires_at=row["expires_at"])


def invite_view(row: asyncpg.Record, now: datetime) -> InviteView:
    return InviteView(
        id=row["id"],
        token=row["token"],
        email=row["email"],
        role=ConversationRole(row["role"]),
        status=invite_status(row, now),
        invited_by=row["invited_by"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        accepted_by=row["accepted_by"],
        accepted_at=row["accepted_at"],
        revoked_at=row["revoked_at"],
    )
