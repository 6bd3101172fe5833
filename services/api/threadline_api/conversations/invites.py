"""Invite rules (contract 4.4): create, list, accept, revoke, and the derived status of 4.1.

Functions take a connection inside the caller's transaction. Creating an invite locks the conversation so the
duplicate-invite rule cannot be raced; accepting locks the invite (two users racing for one token: exactly
one wins, the other gets 410) and then the conversation, since it may start a membership.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from threadline_api.conversations import membership, repository
from threadline_shared.db import Conn
from threadline_shared.dto.enums import ConversationRole, InviteStatus
from threadline_shared.errors import Conflict, Gone, NotFound
from threadline_shared.ids import invite_token

_GONE_MESSAGES = {
    InviteStatus.REVOKED: "invite revoked",
    InviteStatus.ACCEPTED: "invite already used",
    InviteStatus.EXPIRED: "invite expired",
}


class InviteNotFound(NotFound):
    default_message = "invite not found"


def invite_status(invite: asyncpg.Record, now: datetime) -> InviteStatus:
    """Revoked if revoked; else accepted if accepted; else expired if ``expires_at <= now``; else active."""
    if invite["revoked_at"] is not None:
        return InviteStatus.REVOKED
    if invite["accepted_at"] is not None:
        return InviteStatus.ACCEPTED
    if invite["expires_at"] <= now:
        return InviteStatus.EXPIRED
    return InviteStatus.ACTIVE


async def create(
    conn: Conn,
    conversation_id: UUID,
    *,
    caller_id: UUID,
    email: str,
    role: ConversationRole,
    ttl_seconds: int,
    now: datetime,
) -> asyncpg.Record:
    """A new invite expiring ``ttl_seconds`` from now: 403 unless owner or admin (owner invites: owner only);
    409 when an active invite for the same email (any case) and role exists. No event."""
    await membership.lock_for_change(conn, conversation_id)
    acting = membership.require_role(
        await repository.active_role(conn, conversation_id, caller_id), membership.MANAGERS
    )
    if role is ConversationRole.OWNER and acting is not ConversationRole.OWNER:
        raise membership.RoleTooLow("only an owner can invite an owner")
    if await repository.active_invite_exists(conn, conversation_id, email, role, now):
        raise Conflict("an active invite for this email and role exists")
    return await repository.insert_invite(
        conn,
        conversation_id=conversation_id,
        token=invite_token(),
        email=email,
        role=role,
        invited_by=caller_id,
        now=now,
        expires_at=now + timedelta(seconds=ttl_seconds),
    )


async def list_for_manager(conn: Conn, conversation_id: UUID, *, caller_id: UUID) -> list[asyncpg.Record]:
    """The conversation's invites, newest first; 403 unless the caller is an owner or admin."""
    membership.require_role(
        await repository.active_role(conn, conversation_id, caller_id), membership.MANAGERS
    )
    return await repository.list_invites(conn, conversation_id)


@dataclass(frozen=True, slots=True)
class Accepted:
    conversation_id: UUID
    role: ConversationRole


async def accept(conn: Conn, token: str, *, caller_id: UUID, now: datetime) -> Accepted:
    """Accept an invite (4.4): 404 unknown; 200 again for its accepter, unchanged; 410 when revoked, used by
    another user or expired; else mark it accepted and start a membership with its role unless the caller
    is already a participant (then nothing else changes)."""
    invite = await repository.find_invite(conn, token, for_update=True)
    if invite is None:
        raise InviteNotFound()
    conversation_id: UUID = invite["conversation_id"]
    if invite["accepted_by"] == caller_id:
        current = await repository.active_role(conn, conversation_id, caller_id)
        # The role the caller holds now; if they have left since accepting, the role the invite gave.
        return Accepted(conversation_id, current or ConversationRole(invite["role"]))
    status = invite_status(invite, now)
    if status is not InviteStatus.ACTIVE:
        raise Gone(_GONE_MESSAGES[status])
    await repository.mark_accepted(conn, invite["id"], caller_id, now)
    await membership.lock_for_change(conn, conversation_id)
    current = await repository.active_role(conn, conversation_id, caller_id)
    if current is not None:
        return Accepted(conversation_id, current)
    role = ConversationRole(invite["role"])
    await membership.start_membership(conn, conversation_id, caller_id, role)
    return Accepted(conversation_id, role)


async def revoke(conn: Conn, token: str, *, caller_id: UUID, now: datetime) -> None:
    """Revoke an invite (4.4): 404 unknown; 403 unless owner or admin of its conversation; else set
    ``revoked_at`` if unset. Memberships never change; no event."""
    invite = await repository.find_invite(conn, token)
    if invite is None:
        raise InviteNotFound()
    membership.require_role(
        await repository.active_role(conn, invite["conversation_id"], caller_id), membership.MANAGERS
    )
    await repository.mark_revoked(conn, invite["id"], now)
