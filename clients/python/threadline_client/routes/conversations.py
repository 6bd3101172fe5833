"""Conversations, participants and invites (contract 4)."""

from __future__ import annotations

from threadline_client.http import without_none
from threadline_client.routes.base import Id, RouteGroup, ident, parse
from threadline_shared.dto import (
    AcceptInviteResponse,
    ConversationCreateResponse,
    ConversationListResponse,
    ConversationRole,
    ConversationSummary,
    ConversationView,
    CreateInviteResponse,
    InviteListResponse,
    InviteView,
)


class ConversationRoutes(RouteGroup):
    async def conversations(self) -> list[ConversationSummary]:
        """``GET /api/conversations``: the caller's, most recently active first."""
        return parse(
            ConversationListResponse, await self.session.request("GET", "/api/conversations")
        ).conversations

    async def create_conversation(
        self, title: str, *, is_group: bool | None = None, assistant_replies: bool | None = None
    ) -> ConversationCreateResponse:
        """``POST /api/conversations``; the caller becomes its owner. ``assistant_replies`` defaults to
        ``not is_group``."""
        body = without_none(title=title, is_group=is_group, assistant_replies=assistant_replies)
        response = await self.session.request("POST", "/api/conversations", json=body)
        return parse(ConversationCreateResponse, response)

    async def conversation(self, conversation_id: Id) -> ConversationView:
        """``GET /api/conversations/{conversation_id}``, participants included."""
        response = await self.session.request("GET", f"/api/conversations/{ident(conversation_id)}")
        return parse(ConversationView, response)

    async def add_participant(
        self, conversation_id: Id, user_id: Id, role: ConversationRole | str | None = None
    ) -> None:
        """``POST .../participants``: add a user, or change a participant's role (default ``member``)."""
        body = without_none(user_id=ident(user_id), role=str(role) if role is not None else None)
        path = f"/api/conversations/{ident(conversation_id)}/participants"
        await self.session.request("POST", path, json=body)

    async def remove_participant(self, conversation_id: Id, user_id: Id) -> None:
        """``DELETE .../participants/{user_id}``: remove a participant, or leave (the caller's own id)."""
        path = f"/api/conversations/{ident(conversation_id)}/participants/{ident(user_id)}"
        await self.session.request("DELETE", path)

    async def create_invite(
        self,
        conversation_id: Id,
        email: str,
        *,
        role: ConversationRole | str | None = None,
        ttl_seconds: int | None = None,
    ) -> CreateInviteResponse:
        """``POST .../invites``: a token that anyone signed in may accept (the email is only a label)."""
        body = without_none(
            email=email, role=str(role) if role is not None else None, ttl_seconds=ttl_seconds
        )
        path = f"/api/conversations/{ident(conversation_id)}/invites"
        return parse(CreateInviteResponse, await self.session.request("POST", path, json=body))

    async def invites(self, conversation_id: Id) -> list[InviteView]:
        """``GET .../invites``, newest first (owners and admins)."""
        path = f"/api/conversations/{ident(conversation_id)}/invites"
        return parse(InviteListResponse, await self.session.request("GET", path)).invites

    async def accept_invite(self, token: str) -> AcceptInviteResponse:
        """``POST /api/invites/accept``."""
        response = await self.session.request("POST", "/api/invites/accept", json={"token": token})
        return parse(AcceptInviteResponse, response)

    async def revoke_invite(self, token: str) -> None:
        """``POST /api/invites/{token}/revoke``."""
        await self.session.request("POST", f"/api/invites/{token}/revoke")
