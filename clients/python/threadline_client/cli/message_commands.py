"""``threads``, ``show``, ``post``, ``reply``, ``edit`` and ``delete``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from threadline_client.cli.names import UserNames
from threadline_client.cli.render import thread_tree, threads_table
from threadline_client.cli.runtime import JsonOption, print_json, run, state_of
from threadline_client.client import ThreadlineClient

TextArg = Annotated[str, typer.Argument(help="The text; `-` reads it from standard input.")]
MessageArg = Annotated[str, typer.Argument(help="Message id.")]
ReasonOption = Annotated[str | None, typer.Option("--reason", help="Why (kept with the message).")]


def text_of(argument: str) -> str:
    """The argument, or standard input for ``-`` (without the final newline that ``echo`` adds)."""
    return sys.stdin.read().removesuffix("\n") if argument == "-" else argument


def threads(
    ctx: typer.Context,
    conversation: Annotated[str, typer.Argument(help="Conversation id.")],
    limit: Annotated[int, typer.Option("--limit", help="How many threads, most recently active first.")] = 50,
    json_output: JsonOption = False,
) -> None:
    """The threads of a conversation with their summaries and your unread counts."""
    state = state_of(ctx)

    async def action(client: ThreadlineClient) -> None:
        found = []
        async for thread in client.iter_threads(conversation, page_size=min(limit, 200)):
            found.append(thread)
            if len(found) >= limit:
                break
        unread = {t.root_id: t.unread for t in await client.unread(conversation)}
        if json_output:
            print_json({"threads": [{**t.to_wire(), "unread": unread.get(t.root_id, 0)} for t in found]})
            return
        if not found:
            state.console.print("No threads yet: `threadline post CONVERSATION TEXT`.")
            return
        names = UserNames(client)
        names.learn(await client.conversation(conversation))
        await names.fetch(t.root_author for t in found)
        state.console.print(threads_table(found, names, unread))

    run(ctx, action)


def show(
    ctx: typer.Context,
    thread: Annotated[str, typer.Argument(help="The thread's root message id.")],
    json_output: JsonOption = False,
) -> None:
    """A thread as a tree of replies."""
    state = state_of(ctx)

    async def action(client: ThreadlineClient) -> None:
        messages = await client.thread_messages(thread)
        if json_output:
            print_json({"root_id": thread, "messages": [m.to_wire() for m in messages]})
            return
        names = UserNames(client)
        if messages:
            names.learn(await client.conversation(messages[0].conversation_id))
        await names.fetch(m.author_user_id for m in messages)
        state.console.print(thread_tree(messages, names), highlight=False)

    run(ctx, action)


def post(
    ctx: typer.Context,
    conversation: Annotated[str, typer.Argument(help="Conversation id.")],
    text: TextArg,
    json_output: JsonOption = False,
) -> None:
    """Start a thread."""
    state = state_of(ctx)
    content = text_of(text)

    async def action(client: ThreadlineClient) -> None:
        posted = await client.post_root(conversation, content)
        if json_output:
            print_json(posted.to_wire())
        else:
            state.console.print(f"Posted thread {posted.root_id}", highlight=False)

    run(ctx, action)


def reply(ctx: typer.Context, message: MessageArg, text: TextArg, json_output: JsonOption = False) -> None:
    """Reply to a message."""
    state = state_of(ctx)
    content = text_of(text)

    async def action(client: ThreadlineClient) -> None:
        replied = await client.reply(message, content)
        if json_output:
            print_json(replied.to_wire())
        else:
            state.console.print(f"Replied {replied.message_id} (depth {replied.depth})", highlight=False)

    run(ctx, action)


def edit(ctx: typer.Context, message: MessageArg, text: TextArg, reason: ReasonOption = None) -> None:
    """Change a message's text (yours, or any as owner or admin)."""
    state = state_of(ctx)
    content = text_of(text)

    async def action(client: ThreadlineClient) -> None:
        await client.edit_message(message, content, reason=reason)
        state.console.print(f"Edited {message}", highlight=False)

    run(ctx, action)


def delete(ctx: typer.Context, message: MessageArg, reason: ReasonOption = None) -> None:
    """Delete a message (its place in the thread stays; owners and admins can restore it)."""
    state = state_of(ctx)

    async def action(client: ThreadlineClient) -> None:
        await client.delete_message(message, reason=reason)
        state.console.print(f"Deleted {message}", highlight=False)

    run(ctx, action)
