"""`threadline-streamer`: run the streamer. On SIGTERM/SIGINT every stream ends at once, so that uvicorn's
graceful shutdown is not held up by long-lived connections (clients resume elsewhere).

After a graceful shutdown uvicorn raises the signal it caught again, for the handler that was installed
before it; the one installed here for SIGTERM does nothing, so that a completed shutdown exits with status 0
rather than dying of the signal."""

from __future__ import annotations

import signal
from types import FrameType

import uvicorn

from threadline_shared.server import load_settings, serve
from threadline_streamer.app import SERVICE, close_streams, create_app
from threadline_streamer.protocol import StreamerHttpProtocol
from threadline_streamer.settings import StreamerSettings


def main() -> None:
    settings = load_settings(StreamerSettings, SERVICE)
    assert isinstance(settings, StreamerSettings)
    app = create_app(settings)

    class StreamerServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            close_streams(app)
            super().handle_exit(sig, frame)

    signal.signal(signal.SIGTERM, lambda sig, frame: None)
    # The protocol lets a stream drop a client that stopped reading, write to idle sockets directly, and sets
    # plain connects up below ASGI (threadline_streamer.fastpath).
    serve(app, settings, SERVICE, server_class=StreamerServer, http_protocol=StreamerHttpProtocol)


if __name__ == "__main__":
    main()
