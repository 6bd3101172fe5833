"""Conversation, membership and invite routes (contract 4.2-4.4).

Each handler parses its input first (path 400, body 415/400/422), then hands over to the rules in
:mod:`.membership` and :mod:`.invites`, which apply the route's own checks in the contract's order inside one
transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from threadline_api.conversations import invites, membership, repository, views
from threadline_shared.auth import clock_of, principal_of
from threadline_shared.db import Conn
from threadline_shared.dto.conversations import (
    AcceptInviteRequest,
    AcceptInviteResponse,
    AddParticipantRequest,
    ConversationCreateRequest,
    ConversationCreateResponse,
    ConversationListResponse,
    ConversationView,
    CreateInviteRequest,
    CreateInviteResponse,
    InviteListResponse,
)
from threadline_shared.errors import ValidationFailed
from threadline_shared.params import path_uuid, read_json
from threadline_shared.responses import model_response, no_content
from threadline_shared.routes import ApiRoute, Doc
from threadline_shared.settings import Settings

TAGS = ("conversations",)
INVITE_TAGS = ("invites",)


@asynccontextmanager
async def _transaction(request: Request, *, readonly: bool = False) -> AsyncIterator[Conn]:
    """A pooled connection in a transaction; reads get one consistent snapshot."""
    isolation = "repeatable_read" if readonly else None
    async with request.state.pool.acquire() as conn, conn.transaction(isolation=isolation, readonly=readonly):
        yield conn


async def create_conversation(request: Request) -> Response:
    body = await read_json(request, ConversationCreateRequest)
    caller = principal_of(request)
    async with _transaction(request) as conn:
        conversation_id = await repository.insert_conversation(
            conn,
            title=body.title,
            is_group=body.is_group,
            assistant_replies=body.assistant_replies,
            created_by=caller.user_id,
        )
    return model_response(ConversationCreateResponse(conversation_id=conversation_id), 201)


async def list_conversations(request: Request) -> Response:
    rows = await repository.list_for_user(request.state.pool, principal_of(request).user_id)
    summaries = [views.conversation_summary(row) for row in rows]
    return model_response(ConversationListResponse(conversations=summaries))


async def get_conversation(request: Request) -> Response:
    conversation_id = path_uuid(request, "conversation_id")
    caller_id = principal_of(request).user_id
    async with _transaction(request, readonly=True) as conn:
        row = await repository.conversation_for_participant(conn, conversation_id, caller_id)
        if row is None:
            raise membership.NotAParticipant()
        participants = await repository.participants(conn, conversation_id)
    return model_response(views.conversation_view(row, participants))


async def add_participant(request: Request) -> Response:
    conversation_id = path_uuid(request, "conversation_id")
    body = await read_json(request, AddParticipantRequest)
    async with _transaction(request) as conn:
        await membership.add_or_change_role(
            conn,
            conversation_id,
            caller_id=principal_of(request).user_id,
            target_id=body.user_id,
            role=body.role,
        )
    return no_content()


async def remove_participant(request: Request) -> Response:
    conversation_id = path_uuid(request, "conversation_id")
    target_id = path_uuid(request, "user_id")
    async with _transaction(request) as conn:
        await membership.remove(
            conn,
            conversation_id,
            caller_id=principal_of(request).user_id,
            target_id=target_id,
        )
    return no_content()


async def create_invite(request: Request) -> Response:
    conversation_id = path_uuid(request, "conversation_id")
    body = await read_json(request, CreateInviteRequest)
    settings: Settings = request.app.state.settings
    if body.ttl_seconds is not None and body.ttl_seconds > settings.invite_max_ttl_seconds:
        raise ValidationFailed.for_field(
            "ttl_seconds", f"must be at most {settings.invite_max_ttl_seconds} seconds"
        )
    async with _transaction(request) as conn:
        row = await invites.create(
            conn,
            conversation_id,
            caller_id=principal_of(request).user_id,
            email=body.email,
            role=body.role,
            ttl_seconds=body.ttl_seconds or settings.invite_default_ttl_seconds,
            now=clock_of(request).now(),
        )
    return model_response(views.created_invite(row), 201)


async def list_invites(request: Request) -> Response:
    conversation_id = path_uuid(request, "conversation_id")
    async with _transaction(request, readonly=True) as conn:
        rows = await invites.list_for_manager(conn, conversation_id, caller_id=principal_of(request).user_id)
    now = clock_of(request).now()
    return model_response(InviteListResponse(invites=[views.invite_view(row, now) for row in rows]))


async def accept_invite(request: Request) -> Response:
    body = await read_json(request, AcceptInviteRequest)
    async with _transaction(request) as conn:
        accepted = await invites.accept(
            conn, body.token, caller_id=principal_of(request).user_id, now=clock_of(request).now()
        )
    return model_response(AcceptInviteResponse(conversation_id=accepted.conversation_id, role=accepted.role))


async def revoke_invite(request: Request) -> Response:
    token: str = request.path_params["token"]
    caller_id = principal_of(request).user_id
    async with _transaction(request) as conn:
        await invites.revoke(conn, token, caller_id=caller_id, now=clock_of(request).now())
    return no_content()


def routes() -> list[BaseRoute]:
    conversation = "/api/conversations/{conversation_id}"
    return [
        ApiRoute("/api/conversations", create_conversation, methods=["POST"], doc=Doc(
            "Create a conversation; the caller becomes its owner", request=ConversationCreateRequest,
            responses={201: ConversationCreateResponse}, auth=True, csrf=True, tags=TAGS)),
        ApiRoute("/api/conversations", list_conversations, methods=["GET"], doc=Doc(
            "The caller's conversations", responses={200: ConversationListResponse}, auth=True, tags=TAGS)),
        ApiRoute(conversation, get_conversation, methods=["GET"], doc=Doc(
            "A conversation and its participants", responses={200: ConversationView}, auth=True, tags=TAGS)),
        ApiRoute(f"{conversation}/participants", add_participant, methods=["POST"], doc=Doc(
            "Add a participant or change their role", request=AddParticipantRequest, responses={204: None},
            auth=True, csrf=True, tags=TAGS)),
        ApiRoute(f"{conversation}/participants/{{user_id}}", remove_participant, methods=["DELETE"], doc=Doc(
            "Remove a participant, or leave", responses={204: None}, auth=True, csrf=True, tags=TAGS)),
        ApiRoute(f"{conversation}/invites", create_invite, methods=["POST"], doc=Doc(
            "Invite someone by email", request=CreateInviteRequest, responses={201: CreateInviteResponse},
            auth=True, csrf=True, tags=INVITE_TAGS)),
        ApiRoute(f"{conversation}/invites", list_invites, methods=["GET"], doc=Doc(
            "The conversation's invites, newest first", responses={200: InviteListResponse}, auth=True,
            tags=INVITE_TAGS)),
        ApiRoute("/api/invites/accept", accept_invite, methods=["POST"], doc=Doc(
            "Accept an invite", request=AcceptInviteRequest, responses={200: AcceptInviteResponse},
            auth=True, csrf=True, tags=INVITE_TAGS)),
        ApiRoute("/api/invites/{token}/revoke", revoke_invite, methods=["POST"], doc=Doc(
            "Revoke an invite", responses={204: None}, auth=True, csrf=True, tags=INVITE_TAGS)),
    ]  # fmt: skip
