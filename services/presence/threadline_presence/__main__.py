"""`threadline-presence`: run the presence service."""

from __future__ import annotations

from threadline_presence.app import SERVICE, create_app
from threadline_presence.protocol import PresenceHttpProtocol
from threadline_presence.settings import PresenceSettings
from threadline_shared.server import load_settings, serve


def main() -> None:
    settings = load_settings(PresenceSettings, SERVICE)
    assert isinstance(settings, PresenceSettings)
    serve(create_app(settings), settings, SERVICE, http_protocol=PresenceHttpProtocol)


if __name__ == "__main__":
    main()
