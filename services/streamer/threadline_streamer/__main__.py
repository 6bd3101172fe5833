"""`threadline-streamer`: run the streamer. On SIGTERM/SIGINT every stream ends at once, so that uvicorn's
graceful shutdown is not held up by long-lived connections (clients resume elsewhere)."""

from __future__ import annotations

from types import FrameType

import uvicorn

from threadline_shared.server import load_settings, serve
from threadline_streamer.app import SERVICE, close_streams, create_app
from threadline_streamer.settings import StreamerSettings


def main() -> None:
    settings = load_settings(StreamerSettings, SERVICE)
    assert isinstance(settings, StreamerSettings)
    app = create_app(settings)

    class StreamerServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            close_streams(app)
            super().handle_exit(sig, frame)

    serve(app, settings, SERVICE, server_class=StreamerServer)


if __name__ == "__main__":
    main()
