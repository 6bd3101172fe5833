"""The presence store in Redis (contract 7.5): every state change is one atomic Lua script that reports
whether this caller made the transition, so that only that caller publishes.

Layout (7.5)::

    tl:presence:<user_id>        hash        status, last_seen_ms
    tl:presence:deadlines        sorted set  member user_id, score = deadline (ms)
    tl:typing:<conversation_id>  hash        field <user_id>/<root_id or ->, value = expiry (ms)
    tl:typing:deadlines          sorted set  member <conversation_id>/<user_id>/<root_id or ->, score = expiry

The deadlines decide; key TTLs only collect garbage. A presence hash has none: an offline user keeps
``last_seen_at`` however long ago it was, for as long as Redis keeps its data (7.4 shows only users who never
sent a heartbeat without one), at one small hash (about 150 bytes by ``MEMORY USAGE``) per user who ever did.
A heartbeat and going offline also take off the 30-day TTL that earlier versions set. A typing hash lives
:data:`TYPING_RETENTION_GRACE_MS` past its latest expiry (so the sweeper normally finds the entry first).

Scripts read the Redis clock (``TIME``) unless a test passes its own ``now`` (``clock=``), like the rate
limiter. A Redis failure, or no answer within ``command_timeout_seconds``, surfaces as
:class:`~threadline_shared.errors.RedisUnavailable` (503 ``redis_unavailable`` on presence routes).

The time limit is an ``asyncio.timeout`` around each operation rather than only the client's
``socket_timeout``: on Python 3.11, redis-py sends with ``asyncio.wait_for`` when ``socket_timeout`` is
set, and 3.11's ``wait_for`` can swallow a cancellation, so a task cancelled at shutdown would keep
running. The presence service therefore builds its client without ``socket_timeout`` and relies on this
limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError

from threadline_shared.clock import Clock
from threadline_shared.dto.enums import PresenceStatus
from threadline_shared.dto.presence import PresenceUpdate, TypingUpdate
from threadline_shared.errors import RedisUnavailable
from threadline_shared.presence.store import (
    HeartbeatResult,
    TypingKey,
    presence_update,
    to_ms,
    typing_order,
)
from threadline_shared.redis import PackedScript

PRESENCE_KEY = "tl:presence:"
PRESENCE_DEADLINES = "tl:presence:deadlines"
TYPING_KEY = "tl:typing:"
TYPING_DEADLINES = "tl:typing:deadlines"
TYPING_RETENTION_GRACE_MS = 60_000
COMMAND_TIMEOUT_SECONDS = 1.0

T = TypeVar("T")

# Milliseconds stay below 2^53, exact in Lua's doubles; numbers returned to Redis become integers.
_NOW = """
local function now_ms(given)
  if given ~= '' then return tonumber(given) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# KEYS: deadlines, then one presence hash per heartbeat. ARGV: timeout_ms, now, then user_id, status per
# heartbeat; applied in order. Returns {now, changed...}: changed = 1 when the stored status
# differed (never seen counts as offline).
_HEARTBEAT = (
    _NOW
    + """
local now = now_ms(ARGV[2])
local deadline = now + tonumber(ARGV[1])
local result = {now}
for i = 2, #KEYS do
  local status = ARGV[2 * i]
  local old = redis.call('HGET', KEYS[i], 'status')
  redis.call('HSET', KEYS[i], 'status', status, 'last_seen_ms', now)
  redis.call('PERSIST', KEYS[i])
  redis.call('ZADD', KEYS[1], deadline, ARGV[2 * i - 1])
  if old == status then result[i] = 0 else result[i] = 1 end
end
return result
"""
)

# KEYS: one presence hash per user. Returns status and last_seen_ms of each (nil when never seen):
# one command for a whole snapshot instead of a pipeline of HMGETs (redis-py packs and parses each one).
_PRESENCE_OF = """
local result = {}
for i = 1, #KEYS do
  local values = redis.call('HMGET', KEYS[i], 'status', 'last_seen_ms')
  result[2 * i - 1] = values[1]
  result[2 * i] = values[2]
end
return result
"""

# KEYS: a deadlines sorted set. ARGV: limit, now. Members whose score (deadline) is at or before now.
_DUE = (
    _NOW
    + """
local now = now_ms(ARGV[2])
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
"""
)

# KEYS: presence hash, deadlines. ARGV: user_id, now. The sweeper's transition to offline: whoever removes
# the due deadline makes it. Returns {1, last_seen_ms} for that caller, {0} for anyone else.
_EXPIRE_PRESENCE = (
    _NOW
    + """
local now = now_ms(ARGV[2])
local deadline = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not deadline or tonumber(deadline) > now then return {0} end
redis.call('ZREM', KEYS[2], ARGV[1])
local seen = redis.call('HGET', KEYS[1], 'last_seen_ms')
if not seen then return {0} end
redis.call('HSET', KEYS[1], 'status', 'offline')
redis.call('PERSIST', KEYS[1])
return {1, tonumber(seen)}
"""
)

# KEYS: typing hash, typing deadlines. ARGV: field, member, duration_ms, grace_ms, now.
# duration > 0: set the expiry; 0: remove. Returns {existed, expires_at (now for a stop)}.
_SET_TYPING = (
    _NOW
    + """
local now = now_ms(ARGV[5])
local duration = tonumber(ARGV[3])
local existed = redis.call('HEXISTS', KEYS[1], ARGV[1])
if duration > 0 then
  local expiry = now + duration
  redis.call('HSET', KEYS[1], ARGV[1], expiry)
  redis.call('ZADD', KEYS[2], expiry, ARGV[2])
  local keep = duration + tonumber(ARGV[4])
  if redis.call('PTTL', KEYS[1]) < keep then redis.call('PEXPIRE', KEYS[1], keep) end
  return {existed, expiry}
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return {existed, now}
"""
)

# KEYS: typing deadlines, then the typing hash of each (user, conversation) pair. ARGV: now, then user_id and
# conversation_id of each pair. Removes every entry of each user in that conversation; returns {now, then
# per pair: the number of entries removed, and the root part of each removed field}. One call for a whole
# batch of posts: a redis-py pipeline of one script call per post cost the api about 100 µs per post.
_CLEAR_TYPING = (
    _NOW
    + """
local now = now_ms(ARGV[1])
local result = {now}
for i = 2, #KEYS do
  local prefix = ARGV[2 * i - 2] .. '/'
  local conversation = ARGV[2 * i - 1]
  local removed = {}
  for _, field in ipairs(redis.call('HKEYS', KEYS[i])) do
    if string.sub(field, 1, #prefix) == prefix then
      redis.call('HDEL', KEYS[i], field)
      redis.call('ZREM', KEYS[1], conversation .. '/' .. field)
      table.insert(removed, string.sub(field, #prefix + 1))
    end
  end
  table.insert(result, #removed)
  for _, root in ipairs(removed) do table.insert(result, root) end
end
return result
"""
)

# KEYS: typing hash, typing deadlines. ARGV: member, field, now. Whoever removes the due entry emits its
# stop. Returns {1, now} for that caller, {0} for anyone else.
_EXPIRE_TYPING = (
    _NOW
    + """
local now = now_ms(ARGV[3])
local expiry = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not expiry or tonumber(expiry) > now then return {0} end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[2])
return {1, now}
"""
)

# KEYS: typing hash. ARGV: now. Returns {now, field, expiry, field, expiry, ...} of the whole hash.
_TYPING_ENTRIES = (
    _NOW
    + """
local now = now_ms(ARGV[1])
local result = {now}
for _, item in ipairs(redis.call('HGETALL', KEYS[1])) do table.insert(result, item) end
return result
"""
)


def presence_key(user_id: UUID) -> str:
    return f"{PRESENCE_KEY}{user_id}"


def typing_key(conversation_id: UUID) -> str:
    return f"{TYPING_KEY}{conversation_id}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def guarded(call: Callable[[], Awaitable[T]], timeout_seconds: float = COMMAND_TIMEOUT_SECONDS) -> T:
    """Run a Redis call within ``timeout_seconds``; a failure becomes RedisUnavailable (STYLE 5)."""
    try:
        async with asyncio.timeout(timeout_seconds):
            return await call()
    except (RedisError, OSError, TimeoutError) as exc:
        raise RedisUnavailable() from exc


class RedisPresenceStore:
    """:class:`~threadline_shared.presence.store.PresenceStore` on Redis. Cheap to build (no I/O)."""

    def __init__(
        self,
        redis: Redis,
        *,
        timeout_seconds: float = 60,
        clock: Clock | None = None,
        command_timeout_seconds: float = COMMAND_TIMEOUT_SECONDS,
    ) -> None:
        """``timeout_seconds``: THREADLINE_PRESENCE_TIMEOUT_SECONDS; ``clock``: None = the Redis clock."""
        self.redis = redis
        self.timeout_ms = round(timeout_seconds * 1000)
        self.clock = clock
        self.command_timeout = command_timeout_seconds
        self._heartbeat = PackedScript(redis, _HEARTBEAT)
        self._presence_of = PackedScript(redis, _PRESENCE_OF)
        self._due = redis.register_script(_DUE)
        self._expire_presence = redis.register_script(_EXPIRE_PRESENCE)
        self._set_typing = redis.register_script(_SET_TYPING)
        self._clear_typing = PackedScript(redis, _CLEAR_TYPING)
        self._expire_typing = redis.register_script(_EXPIRE_TYPING)
        self._typing_entries = redis.register_script(_TYPING_ENTRIES)

    async def _run(self, call: Callable[[], Awaitable[T]]) -> T:
        return await guarded(call, self.command_timeout)

    def _now_arg(self) -> str:
        return "" if self.clock is None else str(to_ms(self.clock.now()))

    async def heartbeat(self, user_id: UUID, status: PresenceStatus) -> HeartbeatResult:
        return (await self.heartbeat_many([(user_id, status)]))[0]

    async def heartbeat_many(self, beats: Sequence[tuple[UUID, PresenceStatus]]) -> list[HeartbeatResult]:
        """Many heartbeats in one script call, applied in order."""
        if not beats:
            return []
        keys = [PRESENCE_DEADLINES]
        args: list[str | int] = [self.timeout_ms, self._now_arg()]
        for user_id, status in beats:
            keys.append(presence_key(user_id))
            args += (str(user_id), status.value)
        now, *changed = await self._run(lambda: self._heartbeat(keys, args))
        return [
            HeartbeatResult(user_id, status, int(now), bool(made))
            for (user_id, status), made in zip(beats, changed, strict=True)
        ]

    async def due_presence(self, limit: int) -> list[UUID]:
        members = await self._run(lambda: self._due(keys=[PRESENCE_DEADLINES], args=[limit, self._now_arg()]))
        return [UUID(_text(member)) for member in members]

    async def expire_presence(self, user_ids: Sequence[UUID]) -> list[PresenceUpdate]:
        if not user_ids:
            return []
        now = self._now_arg()

        async def run() -> list[Any]:
            async with self.redis.pipeline(transaction=False) as pipe:
                for user_id in user_ids:
                    keys = [presence_key(user_id), PRESENCE_DEADLINES]
                    await self._expire_presence(keys=keys, args=[str(user_id), now], client=pipe)
                results: list[Any] = await pipe.execute()
                return results

        answers = await self._run(run)
        return [
            presence_update(user_id, PresenceStatus.OFFLINE, int(answer[1]))
            for user_id, answer in zip(user_ids, answers, strict=True)
            if int(answer[0]) == 1
        ]

    async def set_typing(self, key: TypingKey, seconds: int) -> tuple[TypingUpdate, bool]:
        keys = [typing_key(key.conversation_id), TYPING_DEADLINES]
        args: list[str | int] = [
            key.field,
            key.member,
            seconds * 1000,
            TYPING_RETENTION_GRACE_MS,
            self._now_arg(),
        ]
        existed, expires_at = await self._run(lambda: self._set_typing(keys=keys, args=args))
        return key.update(int(expires_at)), bool(existed)

    async def clear_typing(self, conversation_id: UUID, user_id: UUID) -> list[TypingUpdate]:
        return await self.clear_typing_many([(conversation_id, user_id)])

    async def clear_typing_many(self, pairs: Sequence[tuple[UUID, UUID]]) -> list[TypingUpdate]:
        """:meth:`clear_typing` for many ``(conversation_id, user_id)`` at once, in one script call; the stops
        of all of them, pair by pair."""
        if not pairs:
            return []
        keys = [TYPING_DEADLINES] + [typing_key(conversation_id) for conversation_id, _ in pairs]
        args: list[str | int] = [self._now_arg()]
        for conversation_id, user_id in pairs:
            args += (str(user_id), str(conversation_id))
        now, *answer = await self._run(lambda: self._clear_typing(keys, args))
        stops: list[TypingUpdate] = []
        position = 0
        for conversation_id, user_id in pairs:
            count = int(answer[position])
            roots = answer[position + 1 : position + 1 + count]
            position += 1 + count
            removed = sorted(
                (TypingKey.from_field(conversation_id, f"{user_id}/{_text(root)}") for root in roots),
                key=lambda entry: entry.field,
            )
            stops += [entry.update(int(now)) for entry in removed]
        return stops

    async def due_typing(self, limit: int) -> list[TypingKey]:
        members = await self._run(lambda: self._due(keys=[TYPING_DEADLINES], args=[limit, self._now_arg()]))
        return [TypingKey.from_member(_text(member)) for member in members]

    async def expire_typing(self, keys: Sequence[TypingKey]) -> list[TypingUpdate]:
        if not keys:
            return []
        now = self._now_arg()

        async def run() -> list[Any]:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    await self._expire_typing(
                        keys=[typing_key(key.conversation_id), TYPING_DEADLINES],
                        args=[key.member, key.field, now],
                        client=pipe,
                    )
                results: list[Any] = await pipe.execute()
                return results

        answers = await self._run(run)
        return [
            key.update(int(answer[1]))
            for key, answer in zip(keys, answers, strict=True)
            if int(answer[0]) == 1
        ]

    async def presence_of(self, user_ids: Sequence[UUID]) -> list[PresenceUpdate]:
        if not user_ids:
            return []
        flat = await self._run(lambda: self._presence_of([presence_key(user_id) for user_id in user_ids], []))
        result: list[PresenceUpdate] = []
        for index, user_id in enumerate(user_ids):
            status, last_seen = flat[2 * index], flat[2 * index + 1]
            if status is None or last_seen is None:
                result.append(presence_update(user_id, PresenceStatus.OFFLINE, None))
            else:
                result.append(presence_update(user_id, PresenceStatus(_text(status)), int(last_seen)))
        return result

    async def typing_in(self, conversation_id: UUID) -> list[TypingUpdate]:
        keys = [typing_key(conversation_id)]
        now, *flat = await self._run(lambda: self._typing_entries(keys=keys, args=[self._now_arg()]))
        live = [
            TypingKey.from_field(conversation_id, _text(field)).update(int(expiry))
            for field, expiry in zip(flat[::2], flat[1::2], strict=True)
            if int(expiry) > int(now)
        ]
        return sorted(live, key=typing_order)
