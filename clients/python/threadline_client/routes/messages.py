"""Threads and messages, read state and assistant cancel (contract 5, 9.7)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from threadline_client.http import without_none
from threadline_client.routes.base import Id, RouteGroup, ident, parse, parse_list
from threadline_shared.dto import (
    MESSAGE_CHUNK_LIST_ADAPTER,
    CancelResponse,
    MarkThreadReadResponse,
    MessageChunk,
    MessageRole,
    MessageView,
    PostRootMessageResponse,
    ReplyMessageResponse,
    ThreadListResponse,
    ThreadSummary,
    ThreadTreeResponse,
    UnreadSummaryResponse,
    UnreadThread,
)


def _role(role: MessageRole | str | None) -> str | None:
    return str(role) if role is not None else None


class MessageRoutes(RouteGroup):
    async def post_root(
        self, conversation_id: Id, content: str, *, role: MessageRole | str | None = None
    ) -> PostRootMessageResponse:
        """``POST /api/threads/{conversation_id}/root``: start a thread."""
        path = f"/api/threads/{ident(conversation_id)}/root"
        body = without_none(content=content, role=_role(role))
        return parse(PostRootMessageResponse, await self.session.request("POST", path, json=body))

    async def reply(
        self, parent_id: Id, content: str, *, role: MessageRole | str | None = None
    ) -> ReplyMessageResponse:
        """``POST /api/messages/{parent_id}/reply``."""
        path = f"/api/messages/{ident(parent_id)}/reply"
        body = without_none(content=content, role=_role(role))
        return parse(ReplyMessageResponse, await self.session.request("POST", path, json=body))

    async def tree(
        self, root_id: Id, *, cursor_path: str | None = None, limit: int | None = None
    ) -> ThreadTreeResponse:
        """``GET /api/threads/{root_id}/tree``: one page of the thread in path order."""
        params = {"cursor_path": cursor_path, "limit": limit}
        response = await self.session.request("GET", f"/api/threads/{ident(root_id)}/tree", params=params)
        return parse(ThreadTreeResponse, response)

    async def thread_messages(self, root_id: Id, *, page_size: int | None = None) -> list[MessageView]:
        """Every message of a thread, following ``next_cursor`` across pages."""
        messages: list[MessageView] = []
        cursor: str | None = None
        while True:
            page = await self.tree(root_id, cursor_path=cursor, limit=page_size)
            messages.extend(page.messages)
            if page.next_cursor is None:
                return messages
            cursor = page.next_cursor

    async def threads(
        self, conversation_id: Id, *, after: str | None = None, limit: int | None = None
    ) -> ThreadListResponse:
        """``GET /api/conversations/{conversation_id}/threads``: one page, most recently active first."""
        path = f"/api/conversations/{ident(conversation_id)}/threads"
        response = await self.session.request("GET", path, params={"after": after, "limit": limit})
        return parse(ThreadListResponse, response)

    async def iter_threads(
        self, conversation_id: Id, *, page_size: int | None = None
    ) -> AsyncIterator[ThreadSummary]:
        """Every thread of a conversation, following ``next_after`` across pages."""
        after: str | None = None
        while True:
            page = await self.threads(conversation_id, after=after, limit=page_size)
            for thread in page.threads:
                yield thread
            if page.next_after is None:
                return
            after = page.next_after

    async def mark_read(self, root_id: Id, *, message_id: Id | None = None) -> MarkThreadReadResponse:
        """``POST /api/threads/{root_id}/read``: up to ``message_id``, or everything until now."""
        body = without_none(message_id=ident(message_id) if message_id is not None else None)
        path = f"/api/threads/{ident(root_id)}/read"
        return parse(MarkThreadReadResponse, await self.session.request("POST", path, json=body))

    async def unread(self, conversation_id: Id) -> list[UnreadThread]:
        """``GET /api/conversations/{conversation_id}/unread``: threads with unread messages."""
        path = f"/api/conversations/{ident(conversation_id)}/unread"
        return parse(UnreadSummaryResponse, await self.session.request("GET", path)).threads

    async def chunks(
        self, message_id: Id, *, start: int | None = None, limit: int | None = None
    ) -> list[MessageChunk]:
        """``GET /api/messages/{message_id}/chunks``: an assistant message's pieces from ``start``."""
        path = f"/api/messages/{ident(message_id)}/chunks"
        response = await self.session.request("GET", path, params={"from": start, "limit": limit})
        return parse_list(MESSAGE_CHUNK_LIST_ADAPTER, response)

    async def edit_message(self, message_id: Id, content: str, *, reason: str | None = None) -> None:
        """``POST /api/messages/{message_id}/edit``."""
        body = without_none(content=content, reason=reason)
        await self.session.request("POST", f"/api/messages/{ident(message_id)}/edit", json=body)

    async def delete_message(self, message_id: Id, *, reason: str | None = None) -> None:
        """``POST /api/messages/{message_id}/delete`` (soft delete)."""
        body = without_none(reason=reason)
        await self.session.request("POST", f"/api/messages/{ident(message_id)}/delete", json=body)

    async def restore_message(self, message_id: Id) -> None:
        """``POST /api/messages/{message_id}/restore`` (owners and admins)."""
        await self.session.request("POST", f"/api/messages/{ident(message_id)}/restore")

    async def cancel(self, message_id: Id) -> CancelResponse:
        """``POST /api/messages/{message_id}/cancel``: stop an assistant reply that is streaming."""
        response = await self.session.request("POST", f"/api/messages/{ident(message_id)}/cancel")
        return parse(CancelResponse, response)
