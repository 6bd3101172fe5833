"""Conversations, memberships and invites in PostgreSQL (contract 4). Plain SQL, each query next to the
function that runs it; driver errors become API errors here (STYLE 5).

Conversation, membership (``joined_at``, ``left_at``) and message times are the database's ``now()``, the
one clock that unread counts and replay visibility compare (contract 1.3, 5.8, 6.4). Invite times come from
the request's clock, so that tests moving a fake clock see invites expire.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from threadline_shared.db import Conn
from threadline_shared.dto.enums import ConversationRole
from threadline_shared.errors import Conflict

# ---- conversations ----------------------------------------------------------------------------------------


async def insert_conversation(
    conn: Conn, *, title: str, is_group: bool, assistant_replies: bool, created_by: UUID
) -> UUID:
    """A new conversation (``last_seq`` 0: creating one emits no event) with its creator as owner."""
    conversation_id: UUID = await conn.fetchval(
        """
        INSERT INTO conversations
            (title, is_group, assistant_replies, created_by, created_at, last_activity_at)
        VALUES ($1, $2, $3, $4, now(), now())
        RETURNING id
        """,
        title,
        is_group,
        assistant_replies,
        created_by,
    )
    await insert_membership(conn, conversation_id, created_by, ConversationRole.OWNER)
    return conversation_id


async def lock_conversation(conn: Conn, conversation_id: UUID) -> bool:
    """Take the conversation's row lock until commit; False when it does not exist.

    Membership changes and invite creation take this lock first, so they run one at a time per conversation
    (the last-owner and duplicate-invite rules are race-free). ``NO KEY UPDATE`` is the lock the event-log
    writer takes anyway; unlike ``FOR UPDATE`` it leaves inserts that merely reference the conversation
    (messages, invites) unblocked.
    """
    found = await conn.fetchval(
        "SELECT true FROM conversations WHERE id = $1 FOR NO KEY UPDATE", conversation_id
    )
    return found is not None


# The caller's unread count per conversation (contract 5.8, summed over its threads): messages not deleted,
# not authored by the caller (authorless ones count), newer than the caller's current joined_at and than
# the thread's read watermark if any. `p` is the caller's active participants row, `c` the conversation.
_UNREAD_TOTAL = """
(SELECT count(*)
 FROM messages m
 LEFT JOIN read_watermarks w ON w.user_id = p.user_id AND w.root_id = m.root_id
 WHERE m.conversation_id = c.id
   AND m.deleted_at IS NULL
   AND m.author_user_id IS DISTINCT FROM p.user_id
   AND m.created_at > p.joined_at
   AND (w.read_at IS NULL OR m.created_at > w.read_at))
"""


async def list_for_user(conn: Conn | asyncpg.Pool, user_id: UUID) -> list[asyncpg.Record]:
    """The user's conversations with their role and unread total, by last activity then id, newest first."""
    return await conn.fetch(
        f"""
        SELECT c.id, c.title, c.is_group, c.created_at, c.last_activity_at, p.role,
               {_UNREAD_TOTAL} AS unread_total
        FROM participants p
        JOIN conversations c ON c.id = p.conversation_id
        WHERE p.user_id = $1 AND p.left_at IS NULL
        ORDER BY c.last_activity_at DESC, c.id DESC
        """,
        user_id,
    )


async def conversation_for_participant(
    conn: Conn | asyncpg.Pool, conversation_id: UUID, user_id: UUID
) -> asyncpg.Record | None:
    """The conversation with the user's role and unread total; None if unknown or the user is not in it."""
    return await conn.fetchrow(
        f"""
        SELECT c.id, c.title, c.is_group, c.assistant_replies, c.created_by, c.created_at,
               c.last_activity_at, p.role, {_UNREAD_TOTAL} AS unread_total
        FROM conversations c
        JOIN participants p ON p.conversation_id = c.id AND p.user_id = $2 AND p.left_at IS NULL
        WHERE c.id = $1
        """,
        conversation_id,
        user_id,
    )


async def participants(conn: Conn | asyncpg.Pool, conversation_id: UUID) -> list[asyncpg.Record]:
    """Active participants with their public user fields, by joined_at then user id."""
    return await conn.fetch(
        """
        SELECT p.user_id, u.username, u.display_name, p.role, p.joined_at
        FROM participants p
        JOIN users u ON u.id = p.user_id
        WHERE p.conversation_id = $1 AND p.left_at IS NULL
        ORDER BY p.joined_at, p.user_id
        """,
        conversation_id,
    )


# ---- memberships ------------------------------------------------------------------------------------------


async def user_exists(conn: Conn, user_id: UUID) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)", user_id))


async def active_role(
    conn: Conn | asyncpg.Pool, conversation_id: UUID, user_id: UUID
) -> ConversationRole | None:
    """The user's role in the conversation, None when not an active participant (or no such conversation)."""
    role = await conn.fetchval(
        "SELECT role FROM participants WHERE conversation_id = $1 AND user_id = $2 AND left_at IS NULL",
        conversation_id,
        user_id,
    )
    return None if role is None else ConversationRole(role)


async def count_owners(conn: Conn, conversation_id: UUID) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM participants WHERE conversation_id = $1 AND role = 'owner' AND left_at IS NULL",
        conversation_id,
    )
    return count


async def insert_membership(conn: Conn, conversation_id: UUID, user_id: UUID, role: ConversationRole) -> None:
    """Start a membership. Callers hold the conversation lock; the partial unique index is the backstop."""
    try:
        await conn.execute(
            """
            INSERT INTO participants (conversation_id, user_id, role, joined_at)
            VALUES ($1, $2, $3, now())
            """,
            conversation_id,
            user_id,
            role.value,
        )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict("already a participant") from exc


async def update_role(conn: Conn, conversation_id: UUID, user_id: UUID, role: ConversationRole) -> None:
    await conn.execute(
        "UPDATE participants SET role = $3 WHERE conversation_id = $1 AND user_id = $2 AND left_at IS NULL",
        conversation_id,
        user_id,
        role.value,
    )


async def end_membership(conn: Conn, conversation_id: UUID, user_id: UUID) -> None:
    await conn.execute(
        """
        UPDATE participants SET left_at = now()
        WHERE conversation_id = $1 AND user_id = $2 AND left_at IS NULL
        """,
        conversation_id,
        user_id,
    )


# ---- invites ----------------------------------------------------------------------------------------------

INVITE_COLUMNS = (
    "id, conversation_id, token, email, role, invited_by, created_at, expires_at, "
    "accepted_by, accepted_at, revoked_at"
)


async def active_invite_exists(
    conn: Conn, conversation_id: UUID, email: str, role: ConversationRole, now: datetime
) -> bool:
    """An invite neither revoked, accepted nor expired, for the same email (any case) and role."""
    found = await conn.fetchval(
        """
        SELECT EXISTS (
            SELECT 1 FROM invites
            WHERE conversation_id = $1 AND lower(email) = lower($2) AND role = $3
              AND revoked_at IS NULL AND accepted_at IS NULL AND expires_at > $4
        )
        """,
        conversation_id,
        email,
        role.value,
        now,
    )
    return bool(found)


async def insert_invite(
    conn: Conn,
    *,
    conversation_id: UUID,
    token: str,
    email: str,
    role: ConversationRole,
    invited_by: UUID,
    now: datetime,
    expires_at: datetime,
) -> asyncpg.Record:
    try:
        row = await conn.fetchrow(
            f"""
            INSERT INTO invites (conversation_id, token, email, role, invited_by, created_at, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            RETURNING {INVITE_COLUMNS}
            """,
            conversation_id,
            token,
            email,
            role.value,
            invited_by,
            now,
            expires_at,
        )
    except asyncpg.UniqueViolationError as exc:  # a 256-bit token collision: practically never
        raise Conflict("invite token collision; try again") from exc
    assert row is not None
    return row


async def list_invites(conn: Conn | asyncpg.Pool, conversation_id: UUID) -> list[asyncpg.Record]:
    """The conversation's invites, newest first."""
    return await conn.fetch(
        f"SELECT {INVITE_COLUMNS} FROM invites WHERE conversation_id = $1 ORDER BY created_at DESC, id DESC",
        conversation_id,
    )


async def find_invite(conn: Conn, token: str, *, for_update: bool = False) -> asyncpg.Record | None:
    """The invite with this token; ``for_update`` locks it until commit (accepting serialises on it)."""
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(f"SELECT {INVITE_COLUMNS} FROM invites WHERE token = $1{lock}", token)


async def mark_accepted(conn: Conn, invite_id: UUID, user_id: UUID, now: datetime) -> None:
    await conn.execute(
        "UPDATE invites SET accepted_by = $2, accepted_at = $3 WHERE id = $1 AND accepted_by IS NULL",
        invite_id,
        user_id,
        now,
    )


async def mark_revoked(conn: Conn, invite_id: UUID, now: datetime) -> None:
    """Set ``revoked_at`` unless already set (revoking twice keeps the first time)."""
    await conn.execute(
        "UPDATE invites SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL", invite_id, now
    )
