"""``threadline tail CONVERSATION``: follow a conversation live until Ctrl-C.

The stream resumes by itself after drops and restarts (``ThreadlineClient.stream``), so nothing is printed
twice and nothing durable is missed. With ``--json`` every event is one JSON object per line on stdout
(``{"id"?: seq, "type": ..., "payload": ...}``) and connection changes are reported on stderr. While
following, the CLI sends a presence heartbeat every 25 s (contract 7.1).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Annotated

import typer
from rich.live import Live

from threadline_client.cli.names import UserNames
from threadline_client.cli.render import plain
from threadline_client.cli.runtime import CliState, print_json, run, state_of
from threadline_client.cli.tail_view import TailView
from threadline_client.client import ThreadlineClient
from threadline_client.errors import ResyncRequired, ThreadlineError
from threadline_client.stream import ReceivedEvent, StatusCallback, StreamState, StreamStatus

HEARTBEAT_SECONDS = 25.0

Handler = Callable[[ReceivedEvent], Awaitable[None]]


async def _heartbeats(client: ThreadlineClient) -> None:
    while True:
        with contextlib.suppress(ThreadlineError):  # presence is a nicety: never stop following for it
            await client.heartbeat()
        await asyncio.sleep(HEARTBEAT_SECONDS)


async def _follow(
    client: ThreadlineClient,
    conversation: str,
    last_event_id: int | None,
    handle: Handler,
    on_status: StatusCallback,
    on_resync: Callable[[ResyncRequired], Awaitable[None]],
) -> None:
    """Follow the stream for ever; after ``resync_required``, reload (``on_resync``) and go on live."""
    cursor = last_event_id
    heartbeats = asyncio.create_task(_heartbeats(client))
    try:
        while True:
            stream = client.stream(conversation, cursor, on_status=on_status)
            try:
                async with stream:
                    async for received in stream:
                        await handle(received)
            except ResyncRequired as resync:
                await on_resync(resync)
                cursor = None
    finally:
        heartbeats.cancel()
        await asyncio.gather(heartbeats, return_exceptions=True)


async def _tail_json(client: ThreadlineClient, conversation: str, last_event_id: int | None) -> None:
    async def handle(received: ReceivedEvent) -> None:
        print_json(received.to_wire())

    def on_status(status: StreamStatus) -> None:
        if status.state is StreamState.RECONNECTING:
            typer.echo(f"reconnecting… ({status.reason}; next try in {status.delay_seconds:.1f} s)", err=True)
        elif status.state is StreamState.OPEN:
            typer.echo("connected", err=True)

    async def on_resync(resync: ResyncRequired) -> None:
        print_json({"type": "error", "payload": {"code": "resync_required", "message": resync.message}})

    await _follow(client, conversation, last_event_id, handle, on_status, on_resync)


async def _tail_live(
    state: CliState, client: ThreadlineClient, conversation: str, last_event_id: int | None
) -> None:
    view = await client.conversation(conversation)
    names = UserNames(client)
    names.learn(view)
    unread = {t.root_id: t.unread for t in await client.unread(conversation)}
    tail_view = TailView(view, names, unread)
    with Live(tail_view, console=state.console, refresh_per_second=8, transient=False) as live:

        async def handle(received: ReceivedEvent) -> None:
            for line in await tail_view.take(received):
                live.console.print(line, highlight=False)
            live.refresh()

        def on_status(status: StreamStatus) -> None:
            tail_view.set_status(status)
            live.refresh()

        async def on_resync(resync: ResyncRequired) -> None:
            live.console.print(
                plain(f"{resync.message}: reloading unread counts, then following live", style="yellow")
            )
            tail_view.unread.clear()
            tail_view.unread.update({t.root_id: t.unread for t in await client.unread(conversation)})
            tail_view.restart()

        await _follow(client, conversation, last_event_id, handle, on_status, on_resync)


def tail(
    ctx: typer.Context,
    conversation: Annotated[str, typer.Argument(help="Conversation id.")],
    last_event_id: Annotated[
        int | None, typer.Option("--last-event-id", help="Replay the events after this id first.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object per event and line.")] = False,
) -> None:
    """Follow a conversation live: threads, replies, assistant answers, typing, presence, unread counts."""
    state = state_of(ctx)

    async def action(client: ThreadlineClient) -> None:
        if json_output:
            await _tail_json(client, conversation, last_event_id)
        else:
            await _tail_live(state, client, conversation, last_event_id)

    run(ctx, action, spinner=None)
