"""The enumerations of contract 1.4. Every value is written as its lowercase string."""

from __future__ import annotations

from enum import StrEnum


class GlobalRole(StrEnum):
    """Global role (1.4). ``admin`` grants ``/api/admin/*`` only; every user holds ``member``."""

    ADMIN = "admin"
    MEMBER = "member"
    READ_ONLY = "read_only"


class ConversationRole(StrEnum):
    """A participant's role in a conversation (1.4); owner, admin and member are writers."""

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"


class MessageRole(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    TOOL = "tool"


class MessageStatus(StrEnum):
    """``complete`` for every message not made by the assistant worker."""

    COMPLETE = "complete"
    STREAMING = "streaming"
    CANCELLED = "cancelled"
    FAILED = "failed"


class PresenceStatus(StrEnum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


class MembershipAction(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    ROLE_UPDATED = "role_updated"


class FinishReason(StrEnum):
    STOP = "stop"
    LENGTH = "length"
    STOP_SEQUENCE = "stop_sequence"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    ERROR = "error"


class CancelStatus(StrEnum):
    """The answer of ``POST /api/messages/{message_id}/cancel`` (9.7)."""

    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    COMPLETED = "completed"
    NOT_TRACKED = "not_tracked"


class InviteStatus(StrEnum):
    """Derived (4.1): revoked, else accepted, else expired when ``expires_at <= now``, else active."""

    ACTIVE = "active"
    ACCEPTED = "accepted"
    REVOKED = "revoked"
    EXPIRED = "expired"
