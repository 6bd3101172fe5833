"""Presence and typing (contract 7.1-7.3): the store decides each transition atomically; this module turns
the transitions this replica made into ephemeral events, published once.

- A heartbeat that changes the status publishes ``presence.update`` in every conversation of the user; a
  heartbeat that keeps it publishes nothing (7.2).
- A typing call publishes one ``typing.update`` (a stop for ``seconds: 0``), 7.3.
- :meth:`PresenceService.sweep` (run by :mod:`threadline_presence.sweeper`) turns passed presence deadlines
  into ``offline`` transitions and expired typing entries into stops. With several replicas sweeping at once,
  each expiry is made, and so published, by exactly one of them.
- A transition whose announcement failed after the store made it (PostgreSQL down for the lookup, a publish
  cut short) is published by a later sweep of the same replica; each user's newest only.

Time comes from the store (its clock, or the Redis server's); this module never reads a clock itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from threadline_presence.memberships import Memberships
from threadline_shared.dto.enums import PresenceStatus
from threadline_shared.dto.presence import PresenceUpdate, TypingUpdate
from threadline_shared.errors import DatabaseUnavailable
from threadline_shared.presence.publish import EventPublisher, Message, presence_messages, typing_messages
from threadline_shared.presence.store import PresenceStore, TypingKey

log = logging.getLogger(__name__)

SWEEP_BATCH = 500
SWEEP_MAX_BATCHES = 20
"""A sweep handles at most this many batches of each kind; the rest waits for the next sweep."""
MAX_UNANNOUNCED = 100_000
"""Transitions kept for a later announcement at most (one per user); beyond it the oldest are dropped."""


@dataclass(frozen=True, slots=True)
class SweepResult:
    offline: list[PresenceUpdate]
    stopped: list[TypingUpdate]


class PresenceService:
    def __init__(
        self,
        store: PresenceStore,
        publisher: EventPublisher,
        memberships: Memberships,
        *,
        typing_max_seconds: int,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.memberships = memberships
        self.typing_max_seconds = typing_max_seconds
        self._attempts = 0  # announcements started: which of two transitions of a user is newer
        self._unannounced: dict[UUID, tuple[int, PresenceUpdate]] = {}

    async def heartbeat(self, user_id: UUID, status: PresenceStatus) -> PresenceUpdate | None:
        """Record a heartbeat; the ``presence.update`` published when it was a transition, else None."""
        return (await self.heartbeats([(user_id, status)]))[0]

    async def heartbeats(self, beats: Sequence[tuple[UUID, PresenceStatus]]) -> list[PresenceUpdate | None]:
        """:meth:`heartbeat` for many users at once: one store round trip, then the transitions published."""
        results = await self.store.heartbeat_many(beats)
        changed = [result.update for result in results if result.changed]
        if changed:
            await self._announce(changed)
        return [result.update if result.changed else None for result in results]

    async def _announce(
        self, updates: list[PresenceUpdate], conversations: dict[UUID, list[UUID]] | None = None
    ) -> None:
        """Publish transitions the store has already made. One whose announcement fails (the lookup, the
        publish, a cancellation) is kept as unannounced: the store will not report it again (the next
        heartbeat keeps the status), so it would be lost for good. A later sweep publishes it
        (:meth:`_retry_unannounced`); a newer transition of the same user replaces it."""
        self._attempts += 1
        attempt = self._attempts
        try:
            if conversations is None:
                conversations = await self.memberships.conversations_of(list({u.user_id for u in updates}))
            messages: list[Message] = []
            for update in updates:
                messages += presence_messages(update, conversations.get(update.user_id, []))
            await self.publisher.publish(messages)
        except BaseException:
            for update in updates:
                kept = self._unannounced.get(update.user_id)
                if kept is None or kept[0] < attempt:
                    self._unannounced[update.user_id] = (attempt, update)
            if len(self._unannounced) > MAX_UNANNOUNCED:
                log.warning("%d unannounced presence transitions: the oldest dropped", len(self._unannounced))
                for user_id in list(self._unannounced)[: len(self._unannounced) - MAX_UNANNOUNCED]:
                    del self._unannounced[user_id]
            raise
        for update in updates:
            kept = self._unannounced.get(update.user_id)
            if kept is not None and kept[0] <= attempt:
                del self._unannounced[update.user_id]  # this one, or an older one it supersedes

    async def _retry_unannounced(self) -> None:
        """Publish the transitions whose announcement failed (each user's newest), unless the user's status
        has changed since: then a newer transition, made here or by another replica, was announced by
        whoever made it, and the old one would only put a stale status last."""
        if not self._unannounced:
            return
        pending = dict(self._unannounced)
        current = {update.user_id: update.status for update in await self.store.presence_of(list(pending))}
        due: list[PresenceUpdate] = []
        for user_id, entry in pending.items():
            if current.get(user_id) == entry[1].status:
                due.append(entry[1])
            elif self._unannounced.get(user_id) is entry:
                del self._unannounced[user_id]
        if due:
            await self._announce(due)

    def clamp(self, seconds: int) -> int:
        """``seconds`` clamped to [0, THREADLINE_TYPING_MAX_SECONDS] (1.5, 7.3)."""
        return max(0, min(seconds, self.typing_max_seconds))

    async def typing(self, key: TypingKey, seconds: int) -> TypingUpdate:
        """Start or refresh (``seconds > 0``) or stop (``0``) a typing entry; publish its one event."""
        update, _ = await self.store.set_typing(key, self.clamp(seconds))
        await self.publisher.publish(typing_messages([update]))
        return update

    async def sweep(self) -> SweepResult:
        """One pass of the sweeper: expire passed presence deadlines, then expired typing entries. Typing
        needs only Redis: when the presence pass fails for want of PostgreSQL, typing still expires (and the
        failure is raised after it)."""
        try:
            await self._retry_unannounced()
            offline = await self._sweep_presence()
        except DatabaseUnavailable:
            await self._sweep_typing()
            raise
        return SweepResult(offline, await self._sweep_typing())

    async def _sweep_presence(self) -> list[PresenceUpdate]:
        made: list[PresenceUpdate] = []
        for _ in range(SWEEP_MAX_BATCHES):
            due = await self.store.due_presence(SWEEP_BATCH)
            if not due:
                break
            # Conversations first: if PostgreSQL is down the deadlines stay, and a later sweep publishes.
            conversations = await self.memberships.conversations_of(due)
            offline = await self.store.expire_presence(due)
            made += offline
            if offline:
                await self._announce(offline, conversations)
            if len(due) < SWEEP_BATCH:
                break
        return made

    async def _sweep_typing(self) -> list[TypingUpdate]:
        made: list[TypingUpdate] = []
        for _ in range(SWEEP_MAX_BATCHES):
            due = await self.store.due_typing(SWEEP_BATCH)
            if not due:
                break
            stopped = await self.store.expire_typing(due)
            made += stopped
            await self.publisher.publish(typing_messages(stopped))
            if len(due) < SWEEP_BATCH:
                break
        return made
