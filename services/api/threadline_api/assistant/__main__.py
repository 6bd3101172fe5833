"""`threadline-assistant`: run the assistant worker."""

from __future__ import annotations

from threadline_api.assistant.app import SERVICE, AssistantSettings, create_app
from threadline_shared.server import load_settings, serve


def main() -> None:
    settings = load_settings(AssistantSettings, SERVICE)
    assert isinstance(settings, AssistantSettings)
    serve(create_app(settings), settings, SERVICE)


if __name__ == "__main__":
    main()
