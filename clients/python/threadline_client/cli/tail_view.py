"""What ``threadline tail`` shows: a line per new thread, reply, edit, deletion and membership change (printed
once, above the live area), and a live area with presence, typing, unread counts, assistant answers growing
token by token, and "reconnecting…" while the stream is down."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from rich.console import Group, RenderableType
from rich.text import Text

from threadline_client.cli.names import UserNames
from threadline_client.cli.render import PRESENCE_MARKS, clean, clock
from threadline_client.stream import ReceivedEvent, StreamState, StreamStatus
from threadline_shared.dto import (
    ConversationView,
    ErrorEvent,
    MembershipAction,
    MembershipChangedEvent,
    MessageCreatedEvent,
    MessageDeltaEvent,
    MessageStatus,
    MessageUpdatedEvent,
    MessageView,
    PresenceStatus,
    PresenceUpdateEvent,
    TypingUpdateEvent,
    UnreadUpdateEvent,
)

EXCERPT_CHARS = 400


@dataclass
class StreamingAnswer:
    message: MessageView
    text: str = ""


class TailView:
    def __init__(self, conversation: ConversationView, names: UserNames, unread: dict[UUID, int]) -> None:
        self.conversation = conversation
        self.names = names
        self.unread = unread
        self.presence: dict[UUID, PresenceStatus] = {}
        self.typing: dict[tuple[UUID, UUID | None], datetime] = {}
        self.answers: dict[UUID, StreamingAnswer] = {}
        self.status = StreamStatus(StreamState.CONNECTING)

    def set_status(self, status: StreamStatus) -> None:
        self.status = status

    def restart(self) -> None:
        """After a resync: partial answers may never complete on this connection."""
        self.answers.clear()

    async def take(self, received: ReceivedEvent) -> list[RenderableType]:
        """Account for one event; the lines to print above the live area."""
        event = received.event
        match event:
            case MessageCreatedEvent(payload=message):
                if message.status is MessageStatus.STREAMING:
                    self.answers[message.id] = StreamingAnswer(message)
                    return []
                await self.names.fetch([message.author_user_id])
                return [self._message_line(message, received.seq)]
            case MessageDeltaEvent(payload=chunk):
                if (answer := self.answers.get(chunk.message_id)) is not None:
                    answer.text += "".join(choice.delta.content for choice in chunk.choices)
            case MessageUpdatedEvent(payload=message):
                if self.answers.pop(message.id, None) is not None:
                    return [self._message_line(message, received.seq)]
                await self.names.fetch([message.author_user_id])
                return [self._update_line(message, received.seq)]
            case MembershipChangedEvent(payload=change):
                await self.names.fetch([change.user_id])
                verb = {
                    MembershipAction.ADDED: f"joined as {change.role}",
                    MembershipAction.REMOVED: "left",
                    MembershipAction.ROLE_UPDATED: f"is now {change.role}",
                }[change.action]
                return [
                    self._line(
                        received.seq, Text(f"{clean(self.names(change.user_id))} {verb}", style="yellow")
                    )
                ]
            case ErrorEvent(payload=error):
                return [self._line(received.seq, Text(f"assistant: {clean(error.message)}", style="red"))]
            case UnreadUpdateEvent(payload=unread):
                self.unread[unread.root_id] = unread.unread
            case PresenceUpdateEvent(payload=presence):
                self.presence[presence.user_id] = presence.status
                await self.names.fetch([presence.user_id])
            case TypingUpdateEvent(payload=typing):
                self.typing[(typing.user_id, typing.root_id)] = typing.expires_at
                await self.names.fetch([typing.user_id])
        return []

    def _line(self, seq: int | None, body: Text) -> Text:
        prefix = Text()
        prefix.append(f"{clock(datetime.now(UTC))} ", style="dim")
        if seq is not None:
            prefix.append(f"#{seq} ", style="dim")
        return prefix + body

    def _message_line(self, message: MessageView, seq: int | None) -> Text:
        author = clean(self.names(message.author_user_id))
        body = Text()
        body.append(author, style="bold magenta" if message.author_user_id is None else "bold cyan")
        if message.parent_id is None:
            body.append(f" started thread {message.root_id}", style="green")
        else:
            body.append(f" replied in {message.root_id} to {message.parent_id}", style="dim")
        body.append(f"  [{message.id}]\n  ", style="dim")
        body.append(clean(message.content[:EXCERPT_CHARS]))
        return self._line(seq, body)

    def _update_line(self, message: MessageView, seq: int | None) -> Text:
        if message.deleted_at is not None:
            return self._line(seq, Text(f"message {message.id} was deleted", style="dim"))
        body = Text(f"{clean(self.names(message.author_user_id))}'s message {message.id} now reads:\n  ")
        body.append(clean(message.content[:EXCERPT_CHARS]))
        return self._line(seq, body)

    def __rich__(self) -> RenderableType:
        now = datetime.now(UTC)
        lines: list[RenderableType] = []
        header = Text()
        header.append(f"── {clean(self.conversation.title)} ", style="bold")
        online = sum(1 for s in self.presence.values() if s is not PresenceStatus.OFFLINE)
        header.append(f"· {online} online · {sum(self.unread.values())} unread ──", style="dim")
        lines.append(header)
        if self.presence:
            people = Text()
            for user_id, status in sorted(self.presence.items(), key=lambda item: self.names(item[0])):
                people.append(f"{PRESENCE_MARKS[status]} {clean(self.names(user_id))}  ")
            lines.append(people)
        for (user_id, root_id), expires_at in sorted(self.typing.items(), key=lambda item: item[1]):
            if expires_at > now:
                where = f"in thread {root_id}" if root_id else "a new thread"
                lines.append(Text(f"✎ {clean(self.names(user_id))} is typing {where}…", style="italic"))
        for answer in self.answers.values():
            text = Text("assistant ▸ ", style="bold magenta")
            text.append(clean(answer.text))
            text.append("▌", style="blink")
            lines.append(text)
        if self.status.state is StreamState.RECONNECTING:
            lines.append(
                Text(
                    f"⟳ reconnecting… ({self.status.reason}; attempt {self.status.attempt}, "
                    f"next try in {self.status.delay_seconds:.1f} s)",
                    style="bold red",
                )
            )
        elif self.status.state is StreamState.CONNECTING:
            lines.append(Text("connecting…", style="dim"))
        return Group(*lines)
