"""`threadline-streamer`: run the streamer service."""

from __future__ import annotations

from threadline_shared.server import load_settings, serve
from threadline_streamer.app import SERVICE, create_app
from threadline_streamer.settings import StreamerSettings


def main() -> None:
    settings = load_settings(StreamerSettings, SERVICE)
    assert isinstance(settings, StreamerSettings)
    serve(create_app(settings), settings, SERVICE)


if __name__ == "__main__":
    main()
