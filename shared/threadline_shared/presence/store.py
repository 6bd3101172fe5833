"""The presence store interface (contract 7): a small Protocol, its result types and the key encoding.

Two implementations: :class:`~threadline_shared.presence.redis_store.RedisPresenceStore` (the real one, Lua
scripts on the layout of 7.5) and :class:`~threadline_shared.presence.memory_store.MemoryPresenceStore` (an
in-memory twin for logic tests). One contract test (``tests/presence/test_store_contract.py``) runs against
both.

The state machine (7.2) lives in the store, because every transition must be decided atomically:

- :meth:`PresenceStore.heartbeat` sets ``status``, ``last_seen`` and the deadline; it reports a transition
  when the stored status differs (never seen and ``offline`` count as different from ``online``/``away``).
- :meth:`PresenceStore.due_presence` lists users whose deadline has passed; :meth:`expire_presence` turns
  each of them ``offline`` and reports only the transitions *this caller* made, so that with several
  replicas sweeping at once each transition is reported (and so published) exactly once.
- Typing entries (7.3) are keyed by (conversation, root or none, user). Removal by expiry
  (:meth:`expire_typing`), by ``seconds: 0`` (:meth:`set_typing`) and by a post (:meth:`clear_typing`) each
  report the stop events the caller must publish; an entry is removed, and its stop reported, once.

Times are whole milliseconds since the epoch (the Redis layout's unit). Stores take the time from a clock
when given one (tests), else from the Redis server (``TIME``), so that all replicas share one clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from uuid import UUID

from threadline_shared.dto.enums import PresenceStatus
from threadline_shared.dto.presence import PresenceUpdate, TypingUpdate

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NO_ROOT = "-"
"""The root part of a typing key for an entry without ``root_id`` (typing a new root), contract 7.5."""


def to_ms(moment: datetime) -> int:
    """Whole milliseconds since the epoch (floored)."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


@dataclass(frozen=True, slots=True)
class TypingKey:
    """One typing entry: (conversation, user, root or None)."""

    conversation_id: UUID
    user_id: UUID
    root_id: UUID | None

    @property
    def field(self) -> str:
        """The field in ``tl:typing:<conversation_id>``: ``<user_id>/<root_id or ->``."""
        return f"{self.user_id}/{self.root_id or NO_ROOT}"

    @property
    def member(self) -> str:
        """The member of ``tl:typing:deadlines``: ``<conversation_id>/<user_id>/<root_id or ->``."""
        return f"{self.conversation_id}/{self.field}"

    @classmethod
    def from_field(cls, conversation_id: UUID, field: str) -> TypingKey:
        user, _, root = field.partition("/")
        return cls(conversation_id, UUID(user), None if root == NO_ROOT else UUID(root))

    @classmethod
    def from_member(cls, member: str) -> TypingKey:
        conversation, _, field = member.partition("/")
        return cls.from_field(UUID(conversation), field)

    def update(self, expires_at_ms: int) -> TypingUpdate:
        """The ``typing.update`` payload of this entry with the given expiry."""
        return TypingUpdate(
            conversation_id=self.conversation_id,
            root_id=self.root_id,
            user_id=self.user_id,
            expires_at=from_ms(expires_at_ms),
        )


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    """The presence after a heartbeat, and whether this heartbeat changed the status (a transition)."""

    user_id: UUID
    status: PresenceStatus
    last_seen_ms: int
    changed: bool

    @property
    def update(self) -> PresenceUpdate:
        """The ``presence.update`` of this presence (built on demand: most heartbeats change nothing)."""
        return presence_update(self.user_id, self.status, self.last_seen_ms)


def presence_update(user_id: UUID, status: PresenceStatus, last_seen_ms: int | None) -> PresenceUpdate:
    last_seen_at = None if last_seen_ms is None else from_ms(last_seen_ms)
    return PresenceUpdate(user_id=user_id, status=status, last_seen_at=last_seen_at)


def typing_order(update: TypingUpdate) -> tuple[datetime, str, str]:
    """Live entries are listed by ``expires_at`` (7.4); ties by user, then root (no root first)."""
    return (update.expires_at, str(update.user_id), str(update.root_id or ""))


class PresenceStore(Protocol):
    async def heartbeat(self, user_id: UUID, status: PresenceStatus) -> HeartbeatResult:
        """Record a heartbeat (7.1): ``last_seen = now``, the status, deadline ``now + timeout``."""
        ...

    async def heartbeat_many(self, beats: Sequence[tuple[UUID, PresenceStatus]]) -> list[HeartbeatResult]:
        """:meth:`heartbeat` for each ``(user_id, status)`` in order, in one round trip where it can."""
        ...

    async def due_presence(self, limit: int) -> list[UUID]:
        """Up to ``limit`` users whose deadline has passed (candidates for :meth:`expire_presence`)."""
        ...

    async def expire_presence(self, user_ids: Sequence[UUID]) -> list[PresenceUpdate]:
        """Turn each user whose deadline has passed ``offline``; the transitions this caller made."""
        ...

    async def set_typing(self, key: TypingKey, seconds: int) -> tuple[TypingUpdate, bool]:
        """``seconds > 0``: the entry expires at ``now + seconds``; ``0``: the entry is removed.

        Returns the ``typing.update`` to publish (``expires_at = now`` for a stop) and whether an entry
        existed before the call. ``seconds`` must already be clamped (7.3).
        """
        ...

    async def clear_typing(self, conversation_id: UUID, user_id: UUID) -> list[TypingUpdate]:
        """Remove every entry of ``user_id`` in the conversation (after a post); one stop per entry."""
        ...

    async def due_typing(self, limit: int) -> list[TypingKey]:
        """Up to ``limit`` typing entries whose expiry has passed."""
        ...

    async def expire_typing(self, keys: Sequence[TypingKey]) -> list[TypingUpdate]:
        """Remove each expired entry; the stops (``expires_at`` = removal time) this caller made."""
        ...

    async def presence_of(self, user_ids: Sequence[UUID]) -> list[PresenceUpdate]:
        """The stored presence of each user, in the given order; never seen = ``offline`` without time."""
        ...

    async def typing_in(self, conversation_id: UUID) -> list[TypingUpdate]:
        """The live (not yet expired) typing entries of a conversation, by ``expires_at``."""
        ...
