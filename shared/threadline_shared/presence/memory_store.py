"""The in-memory twin of the Redis presence store, for logic tests (STYLE 12). It takes a Clock and keeps
the same rules as the Lua scripts of :mod:`threadline_shared.presence.redis_store`; the store contract test
runs against both."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from threadline_shared.clock import Clock
from threadline_shared.dto.enums import PresenceStatus
from threadline_shared.dto.presence import PresenceUpdate, TypingUpdate
from threadline_shared.presence.store import (
    HeartbeatResult,
    TypingKey,
    presence_update,
    to_ms,
    typing_order,
)


@dataclass
class _Presence:
    status: PresenceStatus
    last_seen_ms: int


class MemoryPresenceStore:
    def __init__(self, clock: Clock, *, timeout_seconds: float) -> None:
        self.clock = clock
        self.timeout_ms = round(timeout_seconds * 1000)
        self._presence: dict[UUID, _Presence] = {}
        self._deadlines: dict[UUID, int] = {}
        self._typing: dict[TypingKey, int] = {}

    def _now(self) -> int:
        return to_ms(self.clock.now())

    async def heartbeat(self, user_id: UUID, status: PresenceStatus) -> HeartbeatResult:
        now = self._now()
        old = self._presence.get(user_id)
        self._presence[user_id] = _Presence(status, now)
        self._deadlines[user_id] = now + self.timeout_ms
        changed = old is None or old.status is not status
        return HeartbeatResult(user_id, status, now, changed)

    async def heartbeat_many(self, beats: Sequence[tuple[UUID, PresenceStatus]]) -> list[HeartbeatResult]:
        return [await self.heartbeat(user_id, status) for user_id, status in beats]

    async def due_presence(self, limit: int) -> list[UUID]:
        now = self._now()
        due = sorted((deadline, str(user)) for user, deadline in self._deadlines.items() if deadline <= now)
        return [UUID(user) for _, user in due[:limit]]

    async def expire_presence(self, user_ids: Sequence[UUID]) -> list[PresenceUpdate]:
        now = self._now()
        made: list[PresenceUpdate] = []
        for user_id in user_ids:
            deadline = self._deadlines.get(user_id)
            if deadline is None or deadline > now:
                continue
            del self._deadlines[user_id]
            state = self._presence.get(user_id)
            if state is None:
                continue
            state.status = PresenceStatus.OFFLINE
            made.append(presence_update(user_id, PresenceStatus.OFFLINE, state.last_seen_ms))
        return made

    async def set_typing(self, key: TypingKey, seconds: int) -> tuple[TypingUpdate, bool]:
        now = self._now()
        existed = key in self._typing
        if seconds > 0:
            expiry = now + seconds * 1000
            self._typing[key] = expiry
            return key.update(expiry), existed
        self._typing.pop(key, None)
        return key.update(now), existed

    async def clear_typing(self, conversation_id: UUID, user_id: UUID) -> list[TypingUpdate]:
        now = self._now()
        mine = [
            key for key in self._typing if (key.conversation_id, key.user_id) == (conversation_id, user_id)
        ]
        removed = sorted(mine, key=lambda key: key.field)
        for key in removed:
            del self._typing[key]
        return [key.update(now) for key in removed]

    async def due_typing(self, limit: int) -> list[TypingKey]:
        now = self._now()
        due = sorted((expiry, key.member, key) for key, expiry in self._typing.items() if expiry <= now)
        return [key for _, _, key in due[:limit]]

    async def expire_typing(self, keys: Sequence[TypingKey]) -> list[TypingUpdate]:
        now = self._now()
        made: list[TypingUpdate] = []
        for key in keys:
            expiry = self._typing.get(key)
            if expiry is None or expiry > now:
                continue
            del self._typing[key]
            made.append(key.update(now))
        return made

    async def presence_of(self, user_ids: Sequence[UUID]) -> list[PresenceUpdate]:
        result: list[PresenceUpdate] = []
        for user_id in user_ids:
            state = self._presence.get(user_id)
            if state is None:
                result.append(presence_update(user_id, PresenceStatus.OFFLINE, None))
            else:
                result.append(presence_update(user_id, state.status, state.last_seen_ms))
        return result

    async def typing_in(self, conversation_id: UUID) -> list[TypingUpdate]:
        now = self._now()
        live = [
            key.update(expiry)
            for key, expiry in self._typing.items()
            if key.conversation_id == conversation_id and expiry > now
        ]
        return sorted(live, key=typing_order)
