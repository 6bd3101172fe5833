"""Membership rules (contract 4.3, 4.5): who may add, re-role and remove participants, and the events that
record it.

Every function here runs inside the caller's transaction. A change first locks the conversation row
(:func:`repository.lock_conversation`), so changes to one conversation's memberships run one at a time and
the last-owner rule cannot be raced; each change writes exactly one ``membership.changed`` event through the
event log in that same transaction (its NOTIFY goes out on commit, or not at all). No-ops write nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from uuid import UUID

from threadline_api.conversations import repository
from threadline_shared.db import Conn
from threadline_shared.dto.enums import ConversationRole, MembershipAction
from threadline_shared.dto.events import MembershipChanged, MembershipChangedEvent
from threadline_shared.errors import Conflict, Forbidden, NotFound
from threadline_shared.eventlog import LogEntry, append_events

OWNER = ConversationRole.OWNER
MANAGERS = frozenset({ConversationRole.OWNER, ConversationRole.ADMIN})
ANY_ROLE = frozenset(ConversationRole)


class NotAParticipant(Forbidden):
    """403: the caller is not in the conversation, or it does not exist (the two look the same, 4.2)."""

    default_message = "not a participant of this conversation"


class RoleTooLow(Forbidden):
    default_message = "your role in this conversation does not allow this"


class LastOwner(Conflict):
    default_message = "the last owner can neither be demoted, removed nor leave"


def require_role(role: ConversationRole | None, allowed: Collection[ConversationRole]) -> ConversationRole:
    """The caller's role when it is one of ``allowed``; else 403 (not a participant, or role too low)."""
    if role is None:
        raise NotAParticipant()
    if role not in allowed:
        raise RoleTooLow()
    return role


async def caller_role(conn: Conn, conversation_id: UUID, user_id: UUID) -> ConversationRole:
    """The caller's role; 403 when the caller is not a participant or the conversation does not exist."""
    return require_role(await repository.active_role(conn, conversation_id, user_id), ANY_ROLE)


async def lock_for_change(conn: Conn, conversation_id: UUID) -> None:
    """Lock the conversation for a membership change; an unknown conversation is a 403 like any other."""
    if not await repository.lock_conversation(conn, conversation_id):
        raise NotAParticipant()


async def record(
    conn: Conn, conversation_id: UUID, user_id: UUID, role: ConversationRole, action: MembershipAction
) -> None:
    """Append the ``membership.changed`` event (audience: everyone, the affected user included)."""
    payload = MembershipChanged(conversation_id=conversation_id, user_id=user_id, role=role, action=action)
    await append_events(conn, conversation_id, [LogEntry(MembershipChangedEvent(payload=payload))])


async def start_membership(conn: Conn, conversation_id: UUID, user_id: UUID, role: ConversationRole) -> None:
    """A new membership (``joined_at = now()``) and its ``added`` event. The conversation must be locked."""
    await repository.insert_membership(conn, conversation_id, user_id, role)
    await record(conn, conversation_id, user_id, role, MembershipAction.ADDED)


async def add_or_change_role(
    conn: Conn,
    conversation_id: UUID,
    *,
    caller_id: UUID,
    target_id: UUID,
    role: ConversationRole,
) -> None:
    """``POST .../participants`` (4.3): add the target with ``role``, or change their role."""
    await lock_for_change(conn, conversation_id)
    acting = require_role(await repository.active_role(conn, conversation_id, caller_id), MANAGERS)
    if not await repository.user_exists(conn, target_id):
        raise NotFound("user not found")
    current = await repository.active_role(conn, conversation_id, target_id)
    if (role is OWNER or current is OWNER) and acting is not OWNER:
        raise RoleTooLow("only an owner can grant the owner role or change an owner")
    if current is role:
        return
    if current is None:
        await start_membership(conn, conversation_id, target_id, role)
        return
    if current is OWNER and await repository.count_owners(conn, conversation_id) == 1:
        raise LastOwner("the last owner cannot be demoted")
    await repository.update_role(conn, conversation_id, target_id, role)
    await record(conn, conversation_id, target_id, role, MembershipAction.ROLE_UPDATED)


async def remove(conn: Conn, conversation_id: UUID, *, caller_id: UUID, target_id: UUID) -> None:
    """``DELETE .../participants/{user_id}`` (4.3): remove the target, or leave when it is the caller."""
    await lock_for_change(conn, conversation_id)
    acting = await caller_role(conn, conversation_id, caller_id)
    if target_id != caller_id:
        require_role(acting, MANAGERS)
    prior = await repository.active_role(conn, conversation_id, target_id)
    if prior is None:
        raise NotFound("user is not a participant of this conversation")
    if prior is OWNER and acting is not OWNER:
        raise RoleTooLow("only an owner can remove an owner")
    if prior is OWNER and await repository.count_owners(conn, conversation_id) == 1:
        raise LastOwner("the last owner can neither be removed nor leave")
    await repository.end_membership(conn, conversation_id, target_id)
    await record(conn, conversation_id, target_id, prior, MembershipAction.REMOVED)
