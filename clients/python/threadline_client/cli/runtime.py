"""How every command runs: the server URL and stored session, one asyncio run per command, a spinner for
anything slower than a second, JSON output, and errors as one line with a non-zero exit code."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.status import Status

from threadline_client.cli.config import Credentials, CredentialStore
from threadline_client.client import ThreadlineClient
from threadline_client.errors import ProblemError, ThreadlineError

SPINNER_DELAY_SECONDS = 1.0

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


class CliError(ThreadlineError):
    """A failure the CLI itself detects (not logged in, unknown username, ...)."""


@dataclass
class CliState:
    """What the global options chose, shared by every command (``ctx.obj``)."""

    url: str
    store: CredentialStore
    console: Console
    debug: bool = False

    def credentials(self) -> Credentials:
        credentials = self.store.load(self.url)
        if credentials is None:
            raise CliError(f"Not logged in to {self.url}: run `threadline login` first")
        return credentials


def state_of(ctx: typer.Context) -> CliState:
    state = ctx.find_root().obj
    assert isinstance(state, CliState)
    return state


def error_line(error: ThreadlineError) -> str:
    line = f"Error: {error.summary}"
    if isinstance(error, ProblemError) and error.retry_after is not None:
        line += f" (retry in {error.retry_after} s)"
    for field_error in error.field_errors if isinstance(error, ProblemError) else []:
        line += f"; {field_error.get('field')}: {field_error.get('message')}"
    return " ".join(line.split())  # one line, whatever the server's text holds


Action = Callable[[ThreadlineClient], Awaitable[None]]


def run(
    ctx: typer.Context, action: Action, *, signed_in: bool = True, spinner: str | None = "Working…"
) -> None:
    """Run ``action`` with a client on the chosen server (with the stored session when ``signed_in``).

    A :class:`ThreadlineError` prints one line on stderr and exits 1; so does any other failure (a bug: its
    traceback only with ``--debug``). Ctrl-C exits 130. A token the server rotated (refresh) is stored again.
    """
    state = state_of(ctx)
    try:
        asyncio.run(_run(state, action, signed_in, spinner))
    except ThreadlineError as exc:
        typer.echo(error_line(exc), err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Exception as exc:
        if state.debug:
            raise
        reason = " ".join(str(exc).split())[:300]
        typer.echo(
            f"Error: unexpected {type(exc).__name__}: {reason} (run with --debug for details)", err=True
        )
        raise typer.Exit(1) from None


async def _run(state: CliState, action: Action, signed_in: bool, spinner: str | None) -> None:
    credentials = state.credentials() if signed_in else None
    async with ThreadlineClient(state.url, token=credentials.token if credentials else None) as client:
        if spinner is None:
            await action(client)
        else:
            async with delayed_spinner(state.console, spinner):
                await action(client)
        if credentials is not None and client.token and client.token != credentials.token:
            state.store.save(state.url, Credentials(client.token, credentials.username, credentials.user_id))


@asynccontextmanager
async def delayed_spinner(
    console: Console, text: str, delay: float = SPINNER_DELAY_SECONDS
) -> AsyncIterator[Status | None]:
    """A spinner that appears only if the block takes longer than ``delay`` (on a terminal)."""
    if not console.is_terminal:
        yield None
        return
    status = console.status(text)

    async def show() -> None:
        await asyncio.sleep(delay)
        status.start()

    task = asyncio.create_task(show())
    try:
        yield status
    finally:
        task.cancel()
        status.stop()


def print_json(data: Any) -> None:
    """One JSON document on one line (scripts read it with ``json.loads`` per line)."""
    typer.echo(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
