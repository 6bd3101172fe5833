"""Presence and typing (contract 7), shared by the presence service, the api (typing cleared on post) and
the streamer (snapshot).

- :mod:`.store`: the small :class:`PresenceStore` interface, its result types and key encoding;
- :mod:`.redis_store`: the Redis implementation (atomic Lua scripts on the layout of 7.5);
- :mod:`.memory_store`: its in-memory twin, for logic tests;
- :mod:`.publish`: ephemeral events on ``tl:conv:<conversation_id>`` (6.4);
- :mod:`.posting`: :func:`clear_typing_after_post`, for the api after a post commits (5.3);
- :mod:`.snapshot`: :func:`snapshot`, for the streamer on connect (6.7) and the presence snapshot route.
"""

from threadline_shared.presence.memory_store import MemoryPresenceStore
from threadline_shared.presence.posting import clear_typing_after_post
from threadline_shared.presence.publish import (
    EventPublisher,
    RedisEventPublisher,
    conversation_channel,
    presence_messages,
    publish_envelopes,
    publish_presence,
    publish_typing,
    typing_messages,
)
from threadline_shared.presence.redis_store import RedisPresenceStore
from threadline_shared.presence.snapshot import snapshot, store_snapshot
from threadline_shared.presence.store import HeartbeatResult, PresenceStore, TypingKey

__all__ = [
    "EventPublisher",
    "HeartbeatResult",
    "MemoryPresenceStore",
    "PresenceStore",
    "RedisEventPublisher",
    "RedisPresenceStore",
    "TypingKey",
    "clear_typing_after_post",
    "conversation_channel",
    "presence_messages",
    "publish_envelopes",
    "publish_presence",
    "publish_typing",
    "snapshot",
    "store_snapshot",
    "typing_messages",
]
