"""``threadline conversations``: list, create, show, members, invite, accept, add."""

from __future__ import annotations

from typing import Annotated

import typer

from threadline_client.cli.render import conversation_header, conversations_table, participants_table
from threadline_client.cli.runtime import CliError, JsonOption, print_json, run, state_of
from threadline_client.client import ThreadlineClient
from threadline_shared.dto import ConversationRole

app = typer.Typer(
    help="Your conversations (no subcommand: list them).", invoke_without_command=True, no_args_is_help=False
)

ConversationArg = Annotated[str, typer.Argument(help="Conversation id.")]
RoleOption = Annotated[ConversationRole, typer.Option("--role", help="Role in the conversation.")]


@app.callback()
def conversations(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Your conversations, most recently active first (no subcommand: list them)."""
    if ctx.invoked_subcommand is None:
        list_conversations(ctx, json_output)


@app.command("list")
def list_conversations(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Your conversations, most recently active first, with unread counts."""
    state = state_of(ctx)

    async def action(client: ThreadlineClient) -> None:
        found = await client.conversations()
        if json_output:
            print_json({"conversations": [c.to_wire() for c in found]})
        elif not found:
            state.console.print("No conversations yet: `threadline conversations create TITLE`.")
        else:
            state.console.print(conversations_table(found))

    run(ctx, action)


@app.command()
def create(
    ctx: typer.Context,
    title: str,
    group: Annotated[bool, typer.Option("--group", help="A group conversation.")] = False,
    assistant: Annotated[
        bool | None,
        typer.Option("--assistant/--no-assistant", help="Assistant replies (default: on unless --group)."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Create a conversation; you become its owner."""
    state = state_of(ctx)

    async def action(client: ThreadlineClient) -> None:
        created = await client.create_conversation(title, is_group=group, assistant_replies=assistant)
        if json_output:
            print_json(created.to_wire())
        else:
            state.console.print(f"Created conversation {created.conversation_id}", highlight=False)

    run(ctx, action)


@app.command()
def show(ctx: typer.Context, conversation: ConversationArg, json_output: JsonOption = False) -> None:
    """A conversation and its participants."""
    state = state_of(ctx)

    async def action(client: ThreadlineClient) -> None:
        view = await client.conversation(conversation)
        if json_output:
            print_json(view.to_wire())
            return
        state.console.print(conversation_header(view), highlight=False)
        state.console.print(participants_table(view.participants))

    run(ctx, action)


@app.command()
def members(ctx: typer.Context, conversation: ConversationArg, json_output: JsonOption = False) -> None:
    """The participants, their roles and presence."""
    state = state_of(ctx)

    async def action(client: ThreadlineClient) -> None:
        view = await client.conversation(conversation)
        presence = await client.presence(conversation)
        if json_output:
            statuses = {p.user_id: p for p in presence.participants}
            print_json(
                {
                    "participants": [
                        {**p.to_wire(), "presence": statuses[p.user_id].to_wire()}
                        if p.user_id in statuses
                        else p.to_wire()
                        for p in view.participants
                    ]
                }
            )
            return
        statuses_by_user = {p.user_id: p.status for p in presence.participants}
        state.console.print(participants_table(view.participants, statuses_by_user))

    run(ctx, action)


@app.command()
def invite(
    ctx: typer.Context,
    conversation: ConversationArg,
    email: Annotated[
        str, typer.Argument(help="Who the invite is for (a label; anyone with the token may accept).")
    ],
    role: RoleOption = ConversationRole.MEMBER,
    ttl: Annotated[int | None, typer.Option("--ttl", help="Seconds the invite stays valid.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Create an invite and print its token (owners and admins)."""
    state = state_of(ctx)

    async def action(client: ThreadlineClient) -> None:
        created = await client.create_invite(conversation, email, role=role, ttl_seconds=ttl)
        if json_output:
            print_json(created.to_wire())
            return
        state.console.print(
            f"Invite for {email} ({role}), valid until {created.expires_at:%Y-%m-%d %H:%M} UTC.\n"
            f"They accept it with:\n  threadline conversations accept {created.token}",
            highlight=False,
            soft_wrap=True,
        )

    run(ctx, action)


@app.command(context_settings={"ignore_unknown_options": True})  # base64url tokens may begin with "-"
def accept(ctx: typer.Context, token: str, json_output: JsonOption = False) -> None:
    """Accept an invite: join its conversation."""
    state = state_of(ctx)

    async def action(client: ThreadlineClient) -> None:
        accepted = await client.accept_invite(token)
        if json_output:
            print_json(accepted.to_wire())
        else:
            state.console.print(
                f"Joined conversation {accepted.conversation_id} as {accepted.role}", highlight=False
            )

    run(ctx, action)


@app.command()
def add(
    ctx: typer.Context,
    conversation: ConversationArg,
    username: str,
    role: RoleOption = ConversationRole.MEMBER,
) -> None:
    """Add a user by username, or change their role (owners and admins)."""
    state = state_of(ctx)

    async def action(client: ThreadlineClient) -> None:
        matches = [
            u for u in await client.users(username, limit=100) if u.username.lower() == username.lower()
        ]
        if not matches:
            raise CliError(f"No user named {username!r}")
        await client.add_participant(conversation, matches[0].id, role)
        state.console.print(f"{matches[0].username} is a {role} of {conversation}", highlight=False)

    run(ctx, action)
