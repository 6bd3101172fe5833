"""`threadline-api`: run the api service."""

from __future__ import annotations

from threadline_api.app import SERVICE, create_app
from threadline_api.protocol import ApiHttpProtocol
from threadline_api.settings import ApiSettings
from threadline_shared.server import load_settings, serve


def main() -> None:
    settings = load_settings(ApiSettings, SERVICE)
    assert isinstance(settings, ApiSettings)
    serve(create_app(settings), settings, SERVICE, http_protocol=ApiHttpProtocol)


if __name__ == "__main__":
    main()
