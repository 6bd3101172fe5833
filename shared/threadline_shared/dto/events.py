"""Stream events (contract 6.2, 6.3): one payload model and one envelope model per event type.

An envelope is ``{"type": <type>, "payload": <object>}``, the JSON of an SSE ``data:`` line, of an event-log
row and of a Redis ``tl:conv:<conversation_id>`` message. :data:`STREAM_EVENT_ADAPTER` parses any of them::

    event = STREAM_EVENT_ADAPTER.validate_json(data)
    match event:
        case MessageCreatedEvent(payload=message): ...

The ``message.created``/``message.updated`` payload is :class:`~threadline_shared.dto.messages.MessageView`;
the ``presence.update``/``typing.update`` payloads live in :mod:`threadline_shared.dto.presence`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from threadline_shared.dto.base import Timestamp, Uuid, WireModel
from threadline_shared.dto.enums import ConversationRole, FinishReason, MembershipAction, MessageRole
from threadline_shared.dto.messages import Depth, MessageView, ThreadSummary
from threadline_shared.dto.presence import PresenceUpdate, TypingUpdate


class EventType(StrEnum):
    THREAD_NEW = "thread.new"
    THREAD_ACTIVITY = "thread.activity"
    MESSAGE_CREATED = "message.created"
    MESSAGE_UPDATED = "message.updated"
    MESSAGE_DELTA = "message.delta"
    MESSAGE_DONE = "message.done"
    UNREAD_UPDATE = "unread.update"
    MEMBERSHIP_CHANGED = "membership.changed"
    ERROR = "error"
    PRESENCE_UPDATE = "presence.update"
    TYPING_UPDATE = "typing.update"


DURABLE_EVENT_TYPES = frozenset(
    {
        EventType.THREAD_NEW,
        EventType.THREAD_ACTIVITY,
        EventType.MESSAGE_CREATED,
        EventType.MESSAGE_UPDATED,
        EventType.MESSAGE_DELTA,
        EventType.MESSAGE_DONE,
        EventType.UNREAD_UPDATE,
        EventType.MEMBERSHIP_CHANGED,
        EventType.ERROR,
    }
)
"""Types stored in the event log (6.4). ``error`` is durable for assistant errors only; the connection-only
``resync_required`` error is never stored."""
EPHEMERAL_EVENT_TYPES = frozenset({EventType.PRESENCE_UPDATE, EventType.TYPING_UPDATE})
"""Types published on Redis only, never stored or replayed (6.4)."""


class StreamErrorCode(StrEnum):
    """``error`` event codes (6.3)."""

    ASSISTANT_TIMEOUT = "assistant_timeout"
    ASSISTANT_STREAM_ERROR = "assistant_stream_error"
    RESYNC_REQUIRED = "resync_required"


RESYNC_REQUIRED_MESSAGE = "event history is no longer available; refetch state"

# ---- payloads ---------------------------------------------------------------------------------------------


class ThreadNew(WireModel):
    """``thread.new`` (6.3): a root was posted."""

    conversation_id: Uuid
    root_id: Uuid
    summary: ThreadSummary


class ThreadActivity(WireModel):
    """``thread.activity`` (6.3)."""

    root_id: Uuid
    last_activity_at: Timestamp


class ChoiceDelta(WireModel):
    """``choices[].delta`` of a :class:`ChatDeltaChunk`; ``role`` only at ``idx`` 0."""

    role: Literal[MessageRole.ASSISTANT] | None = None
    content: str


class DeltaChoice(WireModel):
    index: int = 0
    delta: ChoiceDelta


class ChatDeltaChunk(WireModel):
    """``message.delta`` (6.3, 9.5): one flush of assistant output, OpenAI chunk shaped.

    Build it with :meth:`for_flush`, which derives ``id`` and the idx-0 ``role``.
    """

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    root_id: Uuid
    message_id: Uuid
    conversation_id: Uuid
    parent_id: Uuid
    depth: Depth
    idx: int = Field(ge=0)
    choices: list[DeltaChoice]

    @classmethod
    def for_flush(
        cls,
        *,
        message_id: Uuid,
        root_id: Uuid,
        conversation_id: Uuid,
        parent_id: Uuid,
        depth: int,
        idx: int,
        content: str,
    ) -> ChatDeltaChunk:
        role = MessageRole.ASSISTANT if idx == 0 else None
        return cls(
            id=f"{message_id}:{idx}",
            root_id=root_id,
            message_id=message_id,
            conversation_id=conversation_id,
            parent_id=parent_id,
            depth=depth,
            idx=idx,
            choices=[DeltaChoice(index=0, delta=ChoiceDelta(role=role, content=content))],
        )


class Usage(WireModel):
    """Token usage of ``message.done``; all three always present (9.6)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class MessageDone(WireModel):
    """``message.done`` (6.3): the assistant message is finished."""

    message_id: Uuid
    root_id: Uuid
    conversation_id: Uuid
    finish_reason: FinishReason
    usage: Usage


class UnreadUpdate(WireModel):
    """``unread.update`` (6.3): the absolute unread count of one user, never a delta."""

    root_id: Uuid
    unread: int = Field(ge=0)


class MembershipChanged(WireModel):
    """``membership.changed`` (6.3); ``role`` is the new role, or the prior role for ``removed``."""

    conversation_id: Uuid
    user_id: Uuid
    role: ConversationRole
    action: MembershipAction


class StreamError(WireModel):
    """``error`` (6.3): assistant errors carry ``message_id``; ``resync_required`` does not."""

    code: StreamErrorCode
    message: str
    message_id: Uuid | None = None

    @classmethod
    def resync_required(cls) -> StreamError:
        """The connection-only error of 6.6, sent when replay is impossible."""
        return cls(code=StreamErrorCode.RESYNC_REQUIRED, message=RESYNC_REQUIRED_MESSAGE)


# ---- envelopes --------------------------------------------------------------------------------------------


class ThreadNewEvent(WireModel):
    type: Literal[EventType.THREAD_NEW] = EventType.THREAD_NEW
    payload: ThreadNew


class ThreadActivityEvent(WireModel):
    type: Literal[EventType.THREAD_ACTIVITY] = EventType.THREAD_ACTIVITY
    payload: ThreadActivity


class MessageCreatedEvent(WireModel):
    type: Literal[EventType.MESSAGE_CREATED] = EventType.MESSAGE_CREATED
    payload: MessageView


class MessageUpdatedEvent(WireModel):
    type: Literal[EventType.MESSAGE_UPDATED] = EventType.MESSAGE_UPDATED
    payload: MessageView


class MessageDeltaEvent(WireModel):
    type: Literal[EventType.MESSAGE_DELTA] = EventType.MESSAGE_DELTA
    payload: ChatDeltaChunk


class MessageDoneEvent(WireModel):
    type: Literal[EventType.MESSAGE_DONE] = EventType.MESSAGE_DONE
    payload: MessageDone


class UnreadUpdateEvent(WireModel):
    type: Literal[EventType.UNREAD_UPDATE] = EventType.UNREAD_UPDATE
    payload: UnreadUpdate


class MembershipChangedEvent(WireModel):
    type: Literal[EventType.MEMBERSHIP_CHANGED] = EventType.MEMBERSHIP_CHANGED
    payload: MembershipChanged


class ErrorEvent(WireModel):
    type: Literal[EventType.ERROR] = EventType.ERROR
    payload: StreamError


class PresenceUpdateEvent(WireModel):
    type: Literal[EventType.PRESENCE_UPDATE] = EventType.PRESENCE_UPDATE
    payload: PresenceUpdate


class TypingUpdateEvent(WireModel):
    type: Literal[EventType.TYPING_UPDATE] = EventType.TYPING_UPDATE
    payload: TypingUpdate


StreamEvent = Annotated[
    ThreadNewEvent
    | ThreadActivityEvent
    | MessageCreatedEvent
    | MessageUpdatedEvent
    | MessageDeltaEvent
    | MessageDoneEvent
    | UnreadUpdateEvent
    | MembershipChangedEvent
    | ErrorEvent
    | PresenceUpdateEvent
    | TypingUpdateEvent,
    Field(discriminator="type"),
]
STREAM_EVENT_ADAPTER: TypeAdapter[StreamEvent] = TypeAdapter(StreamEvent)


def is_durable(event: StreamEvent) -> bool:
    """Whether ``event`` belongs in the event log (6.4); the connection-only resync error does not."""
    if isinstance(event, ErrorEvent):
        return event.payload.code is not StreamErrorCode.RESYNC_REQUIRED
    return event.type in DURABLE_EVENT_TYPES
