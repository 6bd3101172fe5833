"""Forwarding ephemeral events (presence, typing) from Redis pub/sub to the connections (contract 6.4).

One pub/sub connection per process, subscribed to ``tl:conv:<conversation_id>`` for exactly the conversations
with live subscribers here. Ephemeral frames carry no ``id:`` and are never replayed. When Redis is down the
forwarder retries with backoff and re-subscribes; durable delivery is unaffected.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from uuid import UUID

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from threadline_shared.metrics import STREAM_EVENTS_SENT
from threadline_streamer.hub import Hub
from threadline_streamer.wire import ephemeral_frame, http_chunk

log = logging.getLogger(__name__)

PREFIX = "tl:conv:"
EPHEMERAL_TYPES = frozenset({"presence.update", "typing.update"})


def channel_name(conversation_id: UUID) -> str:
    return f"{PREFIX}{conversation_id}"


class EphemeralForwarder:
    def __init__(self, redis: Redis, hub: Hub) -> None:
        self.redis = redis
        self.hub = hub
        self._wanted: set[str] = set()
        self._changed = asyncio.Event()
        hub.on_channel_opened = self.follow
        hub.on_channel_closed = self.unfollow
        self.on_event: Callable[[UUID], None] = lambda _: None  # e.g. invalidate a cached snapshot

    def follow(self, conversation_id: UUID) -> None:
        self._wanted.add(channel_name(conversation_id))
        self._changed.set()

    def unfollow(self, conversation_id: UUID) -> None:
        self._wanted.discard(channel_name(conversation_id))
        self._changed.set()

    async def run(self) -> None:
        backoff = 0.5
        while True:
            try:
                await self._forward()
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("Redis pub/sub lost (%s); retrying in %.1fs", exc.__class__.__name__, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _forward(self) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        subscribed: set[str] = set()
        try:
            while True:
                if self._changed.is_set() or subscribed != self._wanted:
                    self._changed.clear()
                    wanted = set(self._wanted)
                    if wanted - subscribed:
                        await pubsub.subscribe(*(wanted - subscribed))
                    if subscribed - wanted:
                        await pubsub.unsubscribe(*(subscribed - wanted))
                    subscribed = wanted
                if not subscribed:
                    await self._changed.wait()
                    continue
                message = await pubsub.get_message(timeout=0.05)
                if message is not None and message.get("type") == "message":
                    self._dispatch(message["channel"], message["data"])
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _dispatch(self, channel: bytes | str, data: bytes) -> None:
        name = channel.decode() if isinstance(channel, bytes) else channel
        try:
            conversation_id = UUID(name.removeprefix(PREFIX))
            event_type = orjson.loads(data)["type"]
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            log.warning("ignoring malformed ephemeral event on %s", name)
            return
        if event_type not in EPHEMERAL_TYPES:
            return
        self.on_event(conversation_id)
        hub_channel = self.hub.channels.get(conversation_id)
        if hub_channel is None:
            return
        frame = ephemeral_frame(event_type, data)
        chunk, since, now = http_chunk(frame), time.perf_counter(), time.monotonic()
        members = hub_channel.members()
        for connection in members:
            connection.offer(0, frame, event_type, since, chunk, now)
        STREAM_EVENTS_SENT.labels(event_type).inc(len(members))
