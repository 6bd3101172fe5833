"""HTTP handlers of contract 5.2. Each handler parses first (400/415/422), then runs the route's checks in the
order the contract lists them, then writes in one transaction."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from threadline_api.messages import lifecycle, reading, unread
from threadline_api.messages.access import (
    access_conversation,
    existing_root,
    message_and_membership,
    require_manager,
    require_message_permission,
    require_writer,
)
from threadline_api.messages.posting import MAX_DEPTH, TOO_DEEP, Posted, post_message
from threadline_api.messages.posting_limit import check_posting_limit
from threadline_api.messages.views import message_view, thread_summary, unread_entry
from threadline_shared.auth import principal_of
from threadline_shared.dto.messages import (
    MESSAGE_CHUNK_LIST_ADAPTER,
    MarkThreadReadRequest,
    MarkThreadReadResponse,
    MessageChunk,
    MessageDeleteRequest,
    MessageEditRequest,
    MessageView,
    PostRootMessageRequest,
    PostRootMessageResponse,
    ReplyMessageRequest,
    ReplyMessageResponse,
    ThreadListResponse,
    ThreadTreeResponse,
    UnreadSummaryResponse,
    UnreadThread,
)
from threadline_shared.errors import NotFound, ValidationFailed
from threadline_shared.eventlog import append_events
from threadline_shared.limiter import Limiter
from threadline_shared.params import path_uuid, query_int, read_json
from threadline_shared.responses import model_response, no_content
from threadline_shared.routes import ApiRoute, Doc
from threadline_shared.settings import Settings

TAGS = ("messages",)
TREE_LIMIT, TREE_MAX = 200, 1000
THREADS_LIMIT, THREADS_MAX = 50, 200
CHUNKS_LIMIT, CHUNKS_MAX = 500, 1000


def _storable(**fields: str | None) -> None:
    """PostgreSQL text cannot hold U+0000, so such a content or reason cannot be stored as sent (1.5): 422
    like any other body that breaks the rules, instead of a failed insert (500)."""
    for name, value in fields.items():
        if value is not None and "\x00" in value:
            raise ValidationFailed.for_field(name, "must not contain the character U+0000")


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _limit_post(request: Request, conversation_id: UUID | None, parent_id: UUID | None) -> None:
    """The posting limit, checked after every other check of the route (8.7): with limiting on, those checks
    run here first (one query), then the limit; ``tl_post_message`` checks again as it writes. With limiting
    off, this is nothing and the post is one round trip."""
    limiter: Limiter = request.state.limiter
    if not limiter.enabled:
        return
    user_id, pool = principal_of(request).user_id, request.state.pool
    if parent_id is None:
        assert conversation_id is not None
        require_writer(await access_conversation(pool, conversation_id, user_id))
    else:
        parent, membership = await message_and_membership(pool, parent_id, user_id)
        conversation_id = parent["conversation_id"]
        require_writer(membership)
        if parent["depth"] + 1 > MAX_DEPTH:
            raise ValidationFailed.for_field("parent_id", TOO_DEEP)
    await check_posting_limit(request, conversation_id, user_id)


async def _post(request: Request, conversation_id: UUID | None, parent_id: UUID | None) -> Posted:
    """A root (``parent_id`` None) or a reply: the body's checks, the posting limit, the post (its access
    checks and its write in one statement), then clearing the author's typing after commit (5.3, 7.3)."""
    body: PostRootMessageRequest | ReplyMessageRequest
    if parent_id is None:
        body = await read_json(request, PostRootMessageRequest)
    else:
        body = await read_json(request, ReplyMessageRequest)
    _storable(content=body.content)
    await _limit_post(request, conversation_id, parent_id)
    author_id = principal_of(request).user_id
    posted = await post_message(
        request.state.pool,
        conversation_id=conversation_id,
        parent_id=parent_id,
        author_id=author_id,
        content=body.content,
        role=body.role.value,
        unread_fanout_max=_settings(request).unread_fanout_max_participants,
    )
    await request.app.state.after_post(request, posted.conversation_id, author_id)
    return posted


async def post_root(request: Request) -> Response:
    conversation_id = path_uuid(request, "conversation_id")
    posted = await _post(request, conversation_id, None)
    response = PostRootMessageResponse(
        message_id=posted.message_id, root_id=posted.message_id, conversation_id=conversation_id, depth=1
    )
    return model_response(response, 201)


async def reply(request: Request) -> Response:
    parent_id = path_uuid(request, "parent_id")
    posted = await _post(request, None, parent_id)
    response = ReplyMessageResponse(
        message_id=posted.message_id,
        root_id=posted.root_id,
        conversation_id=posted.conversation_id,
        parent_id=parent_id,
        depth=posted.depth,
    )
    return model_response(response, 201)


async def get_message(request: Request) -> Response:
    message_id = path_uuid(request, "message_id")
    pool = request.state.pool
    row, _ = await message_and_membership(pool, message_id, principal_of(request).user_id)
    return model_response(message_view(row))


async def tree(request: Request) -> Response:
    root_id = path_uuid(request, "root_id")
    cursor_path = reading.parse_cursor_path(request.query_params.get("cursor_path"))
    limit = query_int(request, "limit", default=TREE_LIMIT, minimum=1, maximum=TREE_MAX)
    pool = request.state.pool
    root = await existing_root(pool, root_id)
    await access_conversation(pool, root["conversation_id"], principal_of(request).user_id)
    rows, next_cursor = await reading.tree_page(pool, root_id, cursor_path, limit)
    return model_response(
        ThreadTreeResponse(
            root_id=root_id, messages=[message_view(row) for row in rows], next_cursor=next_cursor
        )
    )


async def threads(request: Request) -> Response:
    conversation_id = path_uuid(request, "conversation_id")
    after = reading.decode_after(request.query_params.get("after"))
    limit = query_int(request, "limit", default=THREADS_LIMIT, minimum=1, maximum=THREADS_MAX)
    pool = request.state.pool
    await access_conversation(pool, conversation_id, principal_of(request).user_id)
    rows, next_after = await reading.thread_page(pool, conversation_id, after, limit)
    participants = await unread.active_participant_count(pool, conversation_id) if rows else 0
    summaries = [thread_summary(row, participants) for row in rows]
    return model_response(ThreadListResponse(threads=summaries, next_after=next_after))


async def chunks(request: Request) -> Response:
    message_id = path_uuid(request, "message_id")
    start = query_int(request, "from", default=0, minimum=0)
    limit = query_int(request, "limit", default=CHUNKS_LIMIT, minimum=1, maximum=CHUNKS_MAX)
    pool = request.state.pool
    message, _ = await message_and_membership(pool, message_id, principal_of(request).user_id)
    rows = []
    if message["role"] == "assistant" and message["deleted_at"] is None:
        rows = await reading.chunks(pool, message_id, start, limit)
    items = [MessageChunk.model_validate(dict(row)) for row in rows]
    return Response(MESSAGE_CHUNK_LIST_ADAPTER.dump_json(items), media_type="application/json")


async def edit(request: Request) -> Response:
    message_id = path_uuid(request, "message_id")
    body = await read_json(request, MessageEditRequest)
    _storable(content=body.content, reason=body.reason)
    principal = principal_of(request)
    pool = request.state.pool
    message, membership = await message_and_membership(pool, message_id, principal.user_id)
    require_message_permission(membership, message["author_user_id"])
    async with pool.acquire() as conn, conn.transaction():
        await lifecycle.edit(conn, message_id, principal.user_id, body.content, body.reason)
    return no_content()


async def delete(request: Request) -> Response:
    message_id = path_uuid(request, "message_id")
    body = await read_json(request, MessageDeleteRequest)
    _storable(reason=body.reason)
    principal = principal_of(request)
    pool = request.state.pool
    message, membership = await message_and_membership(pool, message_id, principal.user_id)
    require_message_permission(membership, message["author_user_id"])
    async with pool.acquire() as conn, conn.transaction():
        await lifecycle.delete(conn, message_id, principal.user_id, body.reason)
    return no_content()


async def restore(request: Request) -> Response:
    message_id = path_uuid(request, "message_id")
    principal = principal_of(request)
    pool = request.state.pool
    _, membership = await message_and_membership(pool, message_id, principal.user_id)
    require_manager(membership)
    async with pool.acquire() as conn, conn.transaction():
        await lifecycle.restore(conn, message_id)
    return no_content()


async def mark_read(request: Request) -> Response:
    root_id = path_uuid(request, "root_id")
    body = await read_json(request, MarkThreadReadRequest)
    principal = principal_of(request)
    pool = request.state.pool
    root = await existing_root(pool, root_id)
    conversation_id = root["conversation_id"]
    await access_conversation(pool, conversation_id, principal.user_id)
    async with pool.acquire() as conn, conn.transaction():
        if body.message_id is not None:
            read_at = await conn.fetchval(
                "SELECT created_at FROM messages WHERE id = $1 AND root_id = $2", body.message_id, root_id
            )
            if read_at is None:
                raise NotFound("message not in this thread")
        else:
            read_at = await conn.fetchval("SELECT now()")
        await unread.move_watermark(conn, principal.user_id, root_id, conversation_id, read_at)
        count = await unread.count_for_user(conn, conversation_id, root_id, principal.user_id)
        await append_events(conn, conversation_id, [unread_entry(principal.user_id, root_id, count)])
    return model_response(MarkThreadReadResponse(root_id=root_id, unread=count))


async def unread_summary(request: Request) -> Response:
    conversation_id = path_uuid(request, "conversation_id")
    principal = principal_of(request)
    pool = request.state.pool
    await access_conversation(pool, conversation_id, principal.user_id)
    rows = await unread.summary(pool, conversation_id, principal.user_id)
    return model_response(UnreadSummaryResponse(threads=[UnreadThread(root_id=r, unread=n) for r, n in rows]))


def _write(
    summary: str, request: type[BaseModel] | None, responses: dict[int, type[BaseModel] | None]
) -> Doc:
    return Doc(summary, request=request, responses=responses, auth=True, csrf=True, tags=TAGS)


def _read(
    summary: str, response: type[BaseModel] | None, query: dict[str, dict[str, object]] | None = None
) -> Doc:
    return Doc(summary, responses={200: response}, query=query or {}, auth=True, tags=TAGS)


PAGE = {"limit": {"type": "integer", "minimum": 1}}


def routes() -> list[BaseRoute]:
    return [
        ApiRoute("/api/threads/{conversation_id}/root", post_root, methods=["POST"], doc=_write(
            "Post a thread root", PostRootMessageRequest, {201: PostRootMessageResponse})),
        ApiRoute("/api/messages/{parent_id}/reply", reply, methods=["POST"], doc=_write(
            "Reply to a message", ReplyMessageRequest, {201: ReplyMessageResponse})),
        ApiRoute("/api/messages/{message_id}", get_message, methods=["GET"], doc=_read(
            "One message", MessageView)),
        ApiRoute("/api/threads/{root_id}/tree", tree, methods=["GET"], doc=_read(
            "A page of a thread in path order", ThreadTreeResponse,
            {"cursor_path": {"type": "string"}, **PAGE})),
        ApiRoute("/api/conversations/{conversation_id}/threads", threads, methods=["GET"], doc=_read(
            "A page of threads by activity", ThreadListResponse, {"after": {"type": "string"}, **PAGE})),
        ApiRoute("/api/messages/{message_id}/chunks", chunks, methods=["GET"], doc=_read(
            "Assistant output chunks (a JSON array of MessageChunk)", None,
            {"from": {"type": "integer", "minimum": 0}, **PAGE})),
        ApiRoute("/api/messages/{message_id}/edit", edit, methods=["POST"], doc=_write(
            "Edit a message", MessageEditRequest, {204: None})),
        ApiRoute("/api/messages/{message_id}/delete", delete, methods=["POST"], doc=_write(
            "Delete a message (tombstone)", MessageDeleteRequest, {204: None})),
        ApiRoute("/api/messages/{message_id}/restore", restore, methods=["POST"], doc=_write(
            "Restore a deleted message", None, {204: None})),
        ApiRoute("/api/threads/{root_id}/read", mark_read, methods=["POST"], doc=_write(
            "Mark a thread read", MarkThreadReadRequest, {200: MarkThreadReadResponse})),
        ApiRoute("/api/conversations/{conversation_id}/unread", unread_summary, methods=["GET"], doc=_read(
            "Unread counts of the caller's threads", UnreadSummaryResponse)),
    ]  # fmt: skip
