"""Which conversations a user is in, for fanning a presence transition out (contract 7.2): a TTL cache in
front of PostgreSQL, invalidated by :mod:`threadline_presence.listener` when ``membership.changed`` events
are committed.

Only the fan-out uses this cache. Route checks (participant, writer) read PostgreSQL on every request, so a
removed user is refused at once; a stale entry here can at worst misdirect one presence event, and only for
as long as an invalidation is in flight (or, if the listener is down, for the TTL).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol
from uuid import UUID

Loader = Callable[[Sequence[UUID]], Awaitable[dict[UUID, list[UUID]]]]


class Memberships(Protocol):
    async def conversations_of(self, user_ids: Sequence[UUID]) -> dict[UUID, list[UUID]]:
        """Every given user mapped to the conversations they are an active participant of."""
        ...


class ConversationsCache:
    """user -> conversation ids, each entry kept ``ttl_seconds`` at most.

    A load that overlaps an invalidation is returned to its caller but not stored (the generation counter
    moved), so an invalidation is never undone by a read that started before it.
    """

    def __init__(
        self,
        load: Loader,
        *,
        ttl_seconds: float,
        max_users: int = 100_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self.ttl = ttl_seconds
        self.max_users = max_users
        self._monotonic = monotonic
        self._entries: dict[UUID, tuple[float, list[UUID]]] = {}
        self._generation = 0

    def __contains__(self, user_id: object) -> bool:
        entry = self._entries.get(user_id) if isinstance(user_id, UUID) else None
        return entry is not None and entry[0] > self._monotonic()

    async def conversations_of(self, user_ids: Sequence[UUID]) -> dict[UUID, list[UUID]]:
        now = self._monotonic()
        result: dict[UUID, list[UUID]] = {}
        missing: list[UUID] = []
        for user_id in dict.fromkeys(user_ids):
            entry = self._entries.get(user_id)
            if entry is not None and entry[0] > now:
                result[user_id] = entry[1]
            else:
                missing.append(user_id)
        if missing:
            generation = self._generation
            loaded = await self._load(missing)
            if generation == self._generation:
                self._store(loaded, self._monotonic() + self.ttl)
            for user_id in missing:
                result[user_id] = loaded.get(user_id, [])
        return result

    def _store(self, loaded: dict[UUID, list[UUID]], expires: float) -> None:
        if len(self._entries) + len(loaded) > self.max_users:
            now = self._monotonic()
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            if len(self._entries) + len(loaded) > self.max_users:
                self._entries.clear()
        for user_id, conversation_ids in loaded.items():
            self._entries[user_id] = (expires, conversation_ids)

    def invalidate(self, user_ids: Iterable[UUID]) -> None:
        for user_id in user_ids:
            self._entries.pop(user_id, None)
        self._generation += 1

    def clear(self) -> None:
        self._entries.clear()
        self._generation += 1
