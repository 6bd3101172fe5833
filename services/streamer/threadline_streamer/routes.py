"""The streamer's routes (contract 2.2)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from threadline_shared.routes import ApiRoute, Doc
from threadline_streamer.stream import open_stream


def routes() -> list[BaseRoute]:
    return [
        ApiRoute(
            "/api/stream/conversations/{conversation_id}",
            open_stream,
            methods=["GET"],
            doc=Doc(
                "Follow a conversation live (text/event-stream); resume with Last-Event-ID",
                responses={200: None},
                query={
                    "last_event_id": {"type": "integer", "minimum": 0},
                    "since": {"type": "integer", "minimum": 0},
                },
                auth=True,
                tags=("stream",),
            ),
        )
    ]
