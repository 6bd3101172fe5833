"""The presence service's routes (contract 2.2, 7): heartbeat, typing and the conversation snapshot.

Authentication (401, 423) and CSRF (403) run before each handler (see ``threadline_shared.routes``); then
parsing (400, 415, 422), then the route's own checks in the contract's order. A Redis failure is 503
``redis_unavailable``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from threadline_presence import repository
from threadline_presence.service import PresenceService
from threadline_shared.auth import principal_of
from threadline_shared.dto.enums import ConversationRole
from threadline_shared.dto.presence import HeartbeatRequest, PresenceSnapshotResponse, TypingRequest
from threadline_shared.errors import Forbidden, NotFound
from threadline_shared.params import path_uuid, read_json
from threadline_shared.presence.snapshot import store_snapshot
from threadline_shared.presence.store import TypingKey
from threadline_shared.responses import model_response, no_content
from threadline_shared.routes import ApiRoute, Doc

TAGS = ("presence",)


def presence_service(request: Request) -> PresenceService:
    service: PresenceService = request.state.presence
    return service


async def heartbeat(request: Request) -> Response:
    """7.1: ``last_seen = now``, the status, deadline ``now + timeout``; publishes only on a transition."""
    body = await read_json(request, HeartbeatRequest)
    await presence_service(request).heartbeat(principal_of(request).user_id, body.status)
    return no_content()


async def typing(request: Request) -> Response:
    """7.3, checks in order: 422 body; participant (403); writer (403); ``root_id`` a root here (404)."""
    body = await read_json(request, TypingRequest)
    user_id = principal_of(request).user_id
    pool = request.state.pool
    role = await repository.participant_role(pool, body.conversation_id, user_id)
    if role is None:
        raise Forbidden("not a participant of this conversation")
    if role is ConversationRole.VIEWER:
        raise Forbidden("viewers cannot type")
    if body.root_id is not None and not await repository.is_thread_root(
        pool, body.conversation_id, body.root_id
    ):
        raise NotFound("thread root not found")
    key = TypingKey(body.conversation_id, user_id, body.root_id)
    await presence_service(request).typing(key, body.seconds)
    return no_content()


async def conversation_presence(request: Request) -> Response:
    """7.4: every active participant by ``user_id``, and the live typing entries by ``expires_at``."""
    conversation_id = path_uuid(request, "conversation_id")
    participants = await repository.participants(request.state.pool, conversation_id)
    if principal_of(request).user_id not in participants:
        raise Forbidden("not a participant of this conversation")
    presence, typing_entries = await store_snapshot(
        presence_service(request).store, conversation_id, list(participants)
    )
    return model_response(PresenceSnapshotResponse(participants=presence, typing=typing_entries))


def routes() -> list[BaseRoute]:
    return [
        ApiRoute("/api/presence/heartbeat", heartbeat, methods=["POST"], doc=Doc(
            "Heartbeat: online or away", request=HeartbeatRequest, responses={204: None},
            auth=True, csrf=True, tags=TAGS)),
        ApiRoute("/api/typing", typing, methods=["POST"], doc=Doc(
            "Start, refresh or stop typing", request=TypingRequest, responses={204: None},
            auth=True, csrf=True, tags=TAGS)),
        ApiRoute("/api/conversations/{conversation_id}/presence", conversation_presence, methods=["GET"],
                 doc=Doc("Presence and typing in a conversation", responses={200: PresenceSnapshotResponse},
                         auth=True, tags=TAGS)),
    ]  # fmt: skip
