"""Presence and typing, served by the presence service behind the same edge (contract 7)."""

from __future__ import annotations

from threadline_client.http import without_none
from threadline_client.routes.base import Id, RouteGroup, ident, parse
from threadline_shared.dto import PresenceSnapshotResponse, PresenceStatus


class PresenceRoutes(RouteGroup):
    async def heartbeat(self, status: PresenceStatus | str | None = None) -> None:
        """``POST /api/presence/heartbeat``: ``online`` (default) or ``away``; send one every ~25 s."""
        body = without_none(status=str(status) if status is not None else None)
        await self.session.request("POST", "/api/presence/heartbeat", json=body)

    async def typing(self, conversation_id: Id, seconds: int, *, root_id: Id | None = None) -> None:
        """``POST /api/typing``: typing in a thread (``root_id``) or a new root for ``seconds`` (0 = stop)."""
        body = without_none(
            conversation_id=ident(conversation_id),
            root_id=ident(root_id) if root_id is not None else None,
            seconds=seconds,
        )
        await self.session.request("POST", "/api/typing", json=body)

    async def presence(self, conversation_id: Id) -> PresenceSnapshotResponse:
        """``GET /api/conversations/{conversation_id}/presence``: participants' status and live typers."""
        path = f"/api/conversations/{ident(conversation_id)}/presence"
        return parse(PresenceSnapshotResponse, await self.session.request("GET", path))
