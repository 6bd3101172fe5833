"""``login``, ``logout``, ``whoami``, ``setup`` (the first admin) and ``register``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from threadline_client.cli.config import Credentials
from threadline_client.cli.render import clean
from threadline_client.cli.runtime import CliState, JsonOption, print_json, run, state_of
from threadline_client.client import ThreadlineClient
from threadline_client.errors import Unauthorized
from threadline_shared.dto import AuthenticatedUser

PasswordOption = Annotated[
    str | None,
    typer.Option("--password", "-p", envvar="THREADLINE_PASSWORD", help="Asked for when not given."),
]
DisplayNameOption = Annotated[str | None, typer.Option("--display-name", help="The name others see.")]


def _ask_password(password: str | None, *, confirm: bool = False) -> str:
    if password is not None:
        return password
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=confirm))


def _remember(state: CliState, client: ThreadlineClient, user: AuthenticatedUser) -> None:
    assert client.token is not None
    state.store.save(state.url, Credentials(client.token, user.username, str(user.id)))
    state.console.print(
        f"Logged in as [bold]{escape(user.username)}[/] on {escape(state.url)}", highlight=False
    )


def login(
    ctx: typer.Context,
    identifier: Annotated[str | None, typer.Argument(help="Username or email.")] = None,
    password: PasswordOption = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="THREADLINE_TOKEN",
            help="Use an existing session token instead of a password (THREADLINE_TOKEN keeps it out of ps).",
        ),
    ] = None,
) -> None:
    """Log in and keep the session token in the config directory (file mode 0600)."""
    state = state_of(ctx)
    if token is None:
        identifier = identifier or str(typer.prompt("Username or email"))
        password = _ask_password(password)

    async def action(client: ThreadlineClient) -> None:
        if token is not None:
            client.session.token = token
            user = (await client.me()).user
        else:
            assert identifier is not None and password is not None
            user = (await client.login(identifier, password)).user
        _remember(state, client, user)

    run(ctx, action, signed_in=False, spinner="Logging in…")


def logout(ctx: typer.Context) -> None:
    """End the session on the server and forget its token."""
    state = state_of(ctx)

    async def action(client: ThreadlineClient) -> None:
        try:
            await client.logout()
            state.console.print(f"Logged out of {state.url}", highlight=False)
        except Unauthorized:
            state.console.print(f"Logged out of {state.url} (the session had already ended)", highlight=False)
        state.store.forget(state.url)

    run(ctx, action, spinner="Logging out…")


def whoami(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Who the stored session belongs to."""
    state = state_of(ctx)

    async def action(client: ThreadlineClient) -> None:
        me = await client.me()
        if json_output:
            print_json(me.to_wire())
            return
        user = me.user
        name = f" ({escape(clean(user.display_name))})" if user.display_name else ""
        state.console.print(
            f"[bold]{escape(user.username)}[/]{name} <{escape(user.email)}>  roles: {', '.join(user.roles)}\n"
            f"[dim]user {user.id} · session expires {me.session.expires_at:%Y-%m-%d %H:%M} UTC · "
            f"server {state.url}[/]",
            highlight=False,
        )

    run(ctx, action)


def setup(
    ctx: typer.Context,
    username: str,
    email: str,
    password: PasswordOption = None,
    display_name: DisplayNameOption = None,
) -> None:
    """Set Threadline up: create the first user, a global admin, and log in as them."""
    state = state_of(ctx)
    secret = _ask_password(password, confirm=True)

    async def action(client: ThreadlineClient) -> None:
        await client.setup(username, email, secret, display_name=display_name)
        user = (await client.login(username, secret)).user
        state.console.print(f"Threadline is set up; {user.username} is its admin.", highlight=False)
        _remember(state, client, user)

    run(ctx, action, signed_in=False, spinner="Setting up…")


def register(
    ctx: typer.Context,
    username: str,
    email: str,
    password: PasswordOption = None,
    display_name: DisplayNameOption = None,
) -> None:
    """Create an account and log in."""
    state = state_of(ctx)
    secret = _ask_password(password, confirm=True)

    async def action(client: ThreadlineClient) -> None:
        await client.register(username, email, secret, display_name=display_name)
        _remember(state, client, (await client.login(username, secret)).user)

    run(ctx, action, signed_in=False, spinner="Registering…")
