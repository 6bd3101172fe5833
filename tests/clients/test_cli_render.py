"""Other people's text reaches the terminal as text: never read as rich markup, and without the control
characters of terminal escape sequences."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from uuid import uuid4

from rich.console import Console

from threadline_client.cli.render import clean, conversations_table, plain
from threadline_shared.dto import ConversationRole, ConversationSummary

HOSTILE = "[/bold][link=https://evil.example]x[/link]\x1b[2J\x1b]0;owned\x07\x9b31m"


def rendered(renderable: object) -> str:
    console = Console(file=io.StringIO(), width=200, force_terminal=False, color_system=None)
    console.print(renderable)
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(output, str)
    return output


def test_control_characters_are_replaced_but_lines_and_tabs_stay() -> None:
    assert clean("a\x1b[2Jb\tc\nd\x07\x9b") == "a\ufffd[2Jb\tc\nd\ufffd\ufffd"


def test_markup_in_a_title_is_shown_as_written() -> None:
    now = datetime.now(UTC)
    summary = ConversationSummary.model_validate(
        {
            "id": str(uuid4()),
            "title": HOSTILE,
            "is_group": True,
            "assistant_replies": False,
            "role": ConversationRole.MEMBER,
            "unread_total": 0,
            "created_at": now,
            "last_activity_at": now,
        }
    )
    output = rendered(conversations_table([summary]))
    assert "[/bold][link=https://evil.example]x[/link]" in output
    assert "\x1b" not in output and "\x07" not in output and "\x9b" not in output


def test_plain_text_is_never_markup() -> None:
    assert rendered(plain("[red]not red[/red]")).strip() == "[red]not red[/red]"
