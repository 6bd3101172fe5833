"""Text renderings of the DTOs for people: tables, the reply tree, one-line event descriptions."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from uuid import UUID

from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from threadline_shared.dto import (
    ConversationSummary,
    ConversationView,
    MessageStatus,
    MessageView,
    Participant,
    PresenceStatus,
    ThreadSummary,
)

NameOf = Callable[[UUID | None], str]
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(value: str) -> str:
    """Other people's text without terminal control characters (escape sequences could clear the screen,
    retitle the window or fake output); newlines and tabs stay."""
    return _CONTROL.sub("\ufffd", value)


def plain(value: str, style: str = "") -> Text:
    """Other people's text for rich, as text: never read as ``[markup]``, control characters replaced."""
    return Text(clean(value), style=style)


PRESENCE_MARKS = {PresenceStatus.ONLINE: "●", PresenceStatus.AWAY: "◐", PresenceStatus.OFFLINE: "○"}


def when(value: datetime) -> str:
    """A timestamp in local time, to the minute."""
    return value.astimezone().strftime("%Y-%m-%d %H:%M")


def clock(value: datetime) -> str:
    return value.astimezone().strftime("%H:%M:%S")


def conversations_table(conversations: Sequence[ConversationSummary]) -> Table:
    table = Table(box=None, pad_edge=False)
    table.add_column("id", no_wrap=True)
    for header in ("title", "role", "unread", "last activity"):
        table.add_column(header)
    for c in conversations:
        unread = Text(str(c.unread_total), style="bold" if c.unread_total else "dim")
        table.add_row(str(c.id), plain(c.title), str(c.role), unread, when(c.last_activity_at))
    return table


def conversation_header(view: ConversationView) -> Text:
    kind = "group" if view.is_group else "conversation"
    assistant = "assistant replies on" if view.assistant_replies else "assistant replies off"
    text = Text()
    text.append(clean(view.title), style="bold")
    text.append(f"  {kind} · {assistant} · you are {view.role} · {view.unread_total} unread\n", style="dim")
    text.append(f"id {view.id} · created {when(view.created_at)} · active {when(view.last_activity_at)}")
    return text


def participants_table(
    participants: Sequence[Participant], presence: Mapping[UUID, PresenceStatus] | None = None
) -> Table:
    table = Table("user", "name", "role", "joined", box=None, pad_edge=False)
    if presence is not None:
        table.add_column("presence")
    for p in participants:
        row: list[str | Text] = [
            plain(p.username),
            plain(p.display_name or ""),
            str(p.role),
            when(p.joined_at),
        ]
        if presence is not None:
            status = presence.get(p.user_id, PresenceStatus.OFFLINE)
            row.append(f"{PRESENCE_MARKS[status]} {status}")
        table.add_row(*row)
    return table


def threads_table(threads: Sequence[ThreadSummary], name_of: NameOf, unread: Mapping[UUID, int]) -> Table:
    table = Table(box=None, pad_edge=False)
    table.add_column("thread", no_wrap=True)
    for header in ("started by", "excerpt", "messages", "unread", "last activity"):
        table.add_column(header)
    for t in threads:
        excerpt = t.root_excerpt.splitlines()[0] if t.root_excerpt else "(deleted)"
        count = unread.get(t.root_id, 0)
        table.add_row(
            str(t.root_id),
            plain(name_of(t.root_author)),
            plain(excerpt[:60]),
            str(t.message_count),
            Text(str(count), style="bold" if count else "dim"),
            when(t.last_activity_at),
        )
    return table


def message_label(message: MessageView, name_of: NameOf) -> Text:
    text = Text()
    text.append(
        clean(name_of(message.author_user_id)),
        style="bold cyan" if message.author_user_id else "bold magenta",
    )
    text.append(f"  {when(message.created_at)}  {message.id}", style="dim")
    if message.edited_at is not None:
        text.append("  (edited)", style="dim")
    if message.status is not MessageStatus.COMPLETE:
        text.append(f"  ({message.status})", style="yellow")
    text.append("\n")
    if message.deleted_at is not None:
        text.append("(deleted)", style="dim italic")
    else:
        text.append(clean(message.content))
    return text


def thread_tree(messages: Sequence[MessageView], name_of: NameOf) -> Tree:
    """The reply tree; ``messages`` in path order, so a parent always comes before its replies."""
    if not messages:
        return Tree("(empty thread)")
    root, *replies = messages
    tree = Tree(message_label(root, name_of), guide_style="dim")
    nodes = {root.id: tree}
    for message in replies:
        parent = nodes.get(message.parent_id) if message.parent_id else None
        nodes[message.id] = (parent or tree).add(message_label(message, name_of))
    return tree
