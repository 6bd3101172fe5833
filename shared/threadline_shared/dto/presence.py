"""Presence and typing DTOs (contract 7.1, 7.3, 7.4).

:class:`PresenceUpdate` and :class:`TypingUpdate` are also the payloads of the ``presence.update`` and
``typing.update`` stream events (6.3).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import StrictInt

from threadline_shared.dto.base import RequestModel, Timestamp, Uuid, WireModel
from threadline_shared.dto.enums import PresenceStatus
from threadline_shared.dto.fields import NullMeansDefault

# ---- requests ---------------------------------------------------------------------------------------------


class HeartbeatRequest(RequestModel):
    """``POST /api/presence/heartbeat`` (7.1). Only ``online`` or ``away``; an empty body means ``online``."""

    status: Annotated[Literal[PresenceStatus.ONLINE, PresenceStatus.AWAY], NullMeansDefault] = (
        PresenceStatus.ONLINE
    )


class TypingRequest(RequestModel):
    """``POST /api/typing`` (7.3). ``seconds`` is any integer; the service clamps it to [0, 30]."""

    conversation_id: Uuid
    root_id: Uuid | None = None
    seconds: StrictInt


# ---- responses and event payloads -------------------------------------------------------------------------


class PresenceUpdate(WireModel):
    """A user's presence (7.2, 7.4); ``last_seen_at`` is omitted for a user who never sent a heartbeat."""

    user_id: Uuid
    status: PresenceStatus
    last_seen_at: Timestamp | None = None


class TypingUpdate(WireModel):
    """A typing entry (7.3). No ``root_id`` means typing a new root; ``expires_at <= now`` means stopped."""

    conversation_id: Uuid
    root_id: Uuid | None = None
    user_id: Uuid
    expires_at: Timestamp


class PresenceSnapshotResponse(WireModel):
    """``GET /api/conversations/{conversation_id}/presence`` (7.4).

    ``participants``: every active participant by ``user_id``; ``typing``: live entries by ``expires_at``.
    """

    participants: list[PresenceUpdate]
    typing: list[TypingUpdate]
