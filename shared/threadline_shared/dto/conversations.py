"""Conversation, membership and invite DTOs (contract 4.1-4.4)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StrictBool, StrictInt, StrictStr, model_validator

from threadline_shared.dto.base import RequestModel, Timestamp, Uuid, WireModel
from threadline_shared.dto.enums import ConversationRole, InviteStatus
from threadline_shared.dto.fields import INVITE_TTL_MAX_SECONDS, ConversationTitle, Email, NullMeansDefault

# ---- requests ---------------------------------------------------------------------------------------------


class ConversationCreateRequest(RequestModel):
    """``POST /api/conversations`` (4.1). ``title`` holds the normalised title (1.5).

    ``assistant_replies`` absent or null defaults to ``not is_group``.
    """

    title: ConversationTitle
    is_group: Annotated[StrictBool, NullMeansDefault] = False
    # Always filled in by `_default_assistant_replies`; the static default is never used.
    assistant_replies: StrictBool = Field(default=True, description="Default: `not is_group`.")

    @model_validator(mode="before")
    @classmethod
    def _default_assistant_replies(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("assistant_replies") is None:
            is_group = data.get("is_group")
            if is_group is None or isinstance(is_group, bool):
                return {**data, "assistant_replies": not is_group}
        return data


class AddParticipantRequest(RequestModel):
    """``POST /api/conversations/{conversation_id}/participants`` (4.3): add, or change a role."""

    user_id: Uuid
    role: Annotated[ConversationRole, NullMeansDefault] = ConversationRole.MEMBER


class CreateInviteRequest(RequestModel):
    """``POST /api/conversations/{conversation_id}/invites`` (4.4).

    ``ttl_seconds`` is ``None`` when not given: the service applies ``THREADLINE_INVITE_DEFAULT_TTL_SECONDS``
    (86,400). Given values must be in 1..2,592,000.
    """

    email: Email
    role: Annotated[ConversationRole, NullMeansDefault] = ConversationRole.MEMBER
    ttl_seconds: Annotated[StrictInt, Field(ge=1, le=INVITE_TTL_MAX_SECONDS)] | None = None


class AcceptInviteRequest(RequestModel):
    """``POST /api/invites/accept`` (4.4). An unknown token (even empty) is a 404, not a 422."""

    token: StrictStr


# ---- responses --------------------------------------------------------------------------------------------


class ConversationCreateResponse(WireModel):
    conversation_id: Uuid


class ConversationSummary(WireModel):
    """One entry of ``GET /api/conversations`` (4.1). ``role`` is the caller's."""

    id: Uuid
    title: str
    is_group: bool
    role: ConversationRole
    created_at: Timestamp
    last_activity_at: Timestamp
    unread_total: int


class ConversationListResponse(WireModel):
    """``GET /api/conversations`` (4.2): by ``last_activity_at`` desc, then ``id`` desc."""

    conversations: list[ConversationSummary]


class Participant(WireModel):
    """An active participant (4.1)."""

    user_id: Uuid
    username: str
    display_name: str | None = None
    role: ConversationRole
    joined_at: Timestamp


class ConversationView(WireModel):
    """``GET /api/conversations/{conversation_id}`` (4.1); participants by ``joined_at``, then ``user_id``."""

    id: Uuid
    title: str
    is_group: bool
    assistant_replies: bool
    created_by: Uuid
    created_at: Timestamp
    last_activity_at: Timestamp
    role: ConversationRole
    unread_total: int
    participants: list[Participant]


class CreateInviteResponse(WireModel):
    token: str
    expires_at: Timestamp


class InviteView(WireModel):
    """One invite of ``GET .../invites`` (4.1)."""

    id: Uuid
    token: str
    email: str
    role: ConversationRole
    status: InviteStatus
    invited_by: Uuid
    created_at: Timestamp
    expires_at: Timestamp
    accepted_by: Uuid | None = None
    accepted_at: Timestamp | None = None
    revoked_at: Timestamp | None = None


class InviteListResponse(WireModel):
    """``GET .../invites`` (4.2): newest first."""

    invites: list[InviteView]


class AcceptInviteResponse(WireModel):
    """``POST /api/invites/accept`` (4.4). ``role`` is the caller's role after the call."""

    conversation_id: Uuid
    role: ConversationRole
