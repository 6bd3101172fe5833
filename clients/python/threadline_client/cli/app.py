"""The ``threadline`` command: global options and the commands of each module."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from threadline_client.cli import auth_commands, conversation_commands, message_commands
from threadline_client.cli.ask import ask
from threadline_client.cli.config import CONFIG_DIR_VARIABLE, CredentialStore, default_config_dir
from threadline_client.cli.runtime import CliState
from threadline_client.cli.tail import tail
from threadline_client.http import DEFAULT_URL

app = typer.Typer(
    name="threadline",
    help="Threadline from the terminal: conversations, threads, the assistant, and a live tail.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def options(
    ctx: typer.Context,
    url: Annotated[
        str,
        typer.Option(
            "--url", envvar="THREADLINE_URL", help="The server (its edge), every /api route behind it."
        ),
    ] = DEFAULT_URL,
    config_dir: Annotated[
        Path | None,
        typer.Option(
            "--config-dir",
            envvar=CONFIG_DIR_VARIABLE,
            help="Where the session token is kept (default: the user's config directory).",
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of unexpected failures.")] = False,
) -> None:
    store = CredentialStore(config_dir or default_config_dir())
    ctx.obj = CliState(url.rstrip("/"), store, Console(), debug)


# Invite tokens are base64url and may begin with "-", and so may a message ("-5 degrees"): these commands
# take an argument that looks like an unknown option as the argument it is, with no "--" needed.
TAKES_DASHED_ARGUMENTS = {"ignore_unknown_options": True}
for command in (
    auth_commands.login,
    auth_commands.logout,
    auth_commands.whoami,
    auth_commands.setup,
    auth_commands.register,
    message_commands.threads,
    message_commands.show,
    message_commands.delete,
    tail,
):
    app.command()(command)
for dashed in (message_commands.post, message_commands.reply, message_commands.edit, ask):
    app.command(context_settings=TAKES_DASHED_ARGUMENTS)(dashed)
app.add_typer(conversation_commands.app, name="conversations")


def main() -> None:
    app()
