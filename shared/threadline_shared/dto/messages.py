"""Thread and message DTOs (contract 5.1-5.8)."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, TypeAdapter

from threadline_shared.dto.base import RequestModel, Timestamp, Uuid, WireModel
from threadline_shared.dto.enums import CancelStatus, MessageRole, MessageStatus
from threadline_shared.dto.fields import MessageContent, NullMeansDefault, Reason

MAX_THREAD_DEPTH = 64
MESSAGE_PATH_PATTERN = r"^m[0-9a-f]{32}(\.m[0-9a-f]{32}){0,63}$"
"""Grammar of a message path (1.2); also the grammar of the tree's ``cursor_path``."""
ROOT_EXCERPT_MAX_CHARS = 240

MessagePath = Annotated[str, Field(pattern=MESSAGE_PATH_PATTERN)]
Depth = Annotated[int, Field(ge=1, le=MAX_THREAD_DEPTH)]

# ---- requests ---------------------------------------------------------------------------------------------


class PostRootMessageRequest(RequestModel):
    """``POST /api/threads/{conversation_id}/root`` (5.2). ``content`` is stored as sent."""

    content: MessageContent
    role: Annotated[MessageRole, NullMeansDefault] = MessageRole.USER


class ReplyMessageRequest(RequestModel):
    """``POST /api/messages/{parent_id}/reply`` (5.2)."""

    content: MessageContent
    role: Annotated[MessageRole, NullMeansDefault] = MessageRole.USER


class MessageEditRequest(RequestModel):
    """``POST /api/messages/{message_id}/edit`` (5.6)."""

    content: MessageContent
    reason: Reason | None = None


class MessageDeleteRequest(RequestModel):
    """``POST /api/messages/{message_id}/delete`` (5.6)."""

    reason: Reason | None = None


class MarkThreadReadRequest(RequestModel):
    """``POST /api/threads/{root_id}/read`` (5.8). Without ``message_id`` the watermark is "now"."""

    message_id: Uuid | None = None


# ---- responses --------------------------------------------------------------------------------------------


class MessageView(WireModel):
    """A message as clients see it (5.1); also the payload of ``message.created`` and ``message.updated``.

    ``content`` is ``""`` while deleted and the text so far while streaming. ``parent_id`` is omitted for a
    root, ``author_user_id`` for assistant messages.
    """

    id: Uuid
    root_id: Uuid
    parent_id: Uuid | None = None
    conversation_id: Uuid
    author_user_id: Uuid | None = None
    role: MessageRole
    content: str
    path: MessagePath
    depth: Depth
    created_at: Timestamp
    edited_at: Timestamp | None = None
    deleted_at: Timestamp | None = None
    status: MessageStatus


class ThreadSummary(WireModel):
    """A thread of the thread list and of ``thread.new`` (5.1); ``root_author`` is written even when null."""

    keep_null: ClassVar[frozenset[str]] = frozenset({"root_author"})

    root_id: Uuid
    root_excerpt: str
    root_author: Uuid | None
    created_at: Timestamp
    last_activity_at: Timestamp
    message_count: int
    participant_count: int


class PostRootMessageResponse(WireModel):
    """``201`` of a root post (5.1): ``root_id`` = ``message_id``, ``depth`` = 1."""

    message_id: Uuid
    root_id: Uuid
    conversation_id: Uuid
    depth: Depth = 1


class ReplyMessageResponse(WireModel):
    """``201`` of a reply (5.1)."""

    message_id: Uuid
    root_id: Uuid
    conversation_id: Uuid
    parent_id: Uuid
    depth: Depth


class ThreadTreeResponse(WireModel):
    """``GET /api/threads/{root_id}/tree`` (5.4); ``next_cursor`` only when more messages follow."""

    root_id: Uuid
    messages: list[MessageView]
    next_cursor: MessagePath | None = None


class ThreadListResponse(WireModel):
    """``GET /api/conversations/{conversation_id}/threads`` (5.5); ``next_after`` is an opaque cursor."""

    threads: list[ThreadSummary]
    next_after: str | None = None


class MessageChunk(WireModel):
    """One flushed piece of assistant output (5.7)."""

    message_id: Uuid
    idx: int = Field(ge=0)
    content: str
    created_at: Timestamp


MESSAGE_CHUNK_LIST_ADAPTER: TypeAdapter[list[MessageChunk]] = TypeAdapter(list[MessageChunk])
"""``GET /api/messages/{message_id}/chunks`` answers a bare JSON array of :class:`MessageChunk`."""


class CancelResponse(WireModel):
    """``202`` of ``POST /api/messages/{message_id}/cancel`` (9.7)."""

    message_id: Uuid
    status: CancelStatus


class MarkThreadReadResponse(WireModel):
    """``POST /api/threads/{root_id}/read`` (5.8): the caller's unread count afterwards."""

    root_id: Uuid
    unread: int = Field(ge=0)


class UnreadThread(WireModel):
    """One thread of :class:`UnreadSummaryResponse`."""

    root_id: Uuid
    unread: int = Field(ge=0)


class UnreadSummaryResponse(WireModel):
    """``GET .../unread`` (5.8): the threads with ``unread > 0``, by ``root_id`` descending."""

    threads: list[UnreadThread]
