"""``threadline ask``: post a question and print the assistant's answer token by token as it streams.

The stream is opened (and subscribed) before the question is posted, so no event of the answer can be missed;
the answer is the assistant message whose parent is the question. Its text comes from ``message.delta``
events; the final ``message.updated`` completes it if deltas were skipped (contract 6.8) and adds the
timeout or error suffix.
"""

from __future__ import annotations

import asyncio
from typing import Annotated
from uuid import UUID

import typer

from threadline_client.cli.message_commands import TextArg, text_of
from threadline_client.cli.render import clean
from threadline_client.cli.runtime import (
    CliError,
    CliState,
    JsonOption,
    delayed_spinner,
    print_json,
    run,
    state_of,
)
from threadline_client.client import ThreadlineClient
from threadline_client.stream import ReceivedEvent, StreamState, StreamStatus
from threadline_shared.dto import (
    ErrorEvent,
    MessageCreatedEvent,
    MessageDeltaEvent,
    MessageDone,
    MessageDoneEvent,
    MessageRole,
    MessageStatus,
    MessageUpdatedEvent,
    MessageView,
    StreamEvent,
)


class Answer:
    """The assistant's reply to one question, assembled from the stream."""

    def __init__(self, question_id: UUID) -> None:
        self.question_id = question_id
        self.message_id: UUID | None = None
        self.text = ""
        self.done: MessageDone | None = None
        self.final: MessageView | None = None
        self.error: str | None = None

    @property
    def finished(self) -> bool:
        return self.final is not None

    def take(self, event: StreamEvent) -> str:
        """Account for one event; the text to print now."""
        match event:
            case MessageCreatedEvent(payload=message) if (
                message.role is MessageRole.ASSISTANT and message.parent_id == self.question_id
            ):
                self.message_id = message.id
            case MessageDeltaEvent(payload=chunk) if chunk.message_id == self.message_id:
                piece = "".join(choice.delta.content for choice in chunk.choices)
                self.text += piece
                return piece
            case MessageDoneEvent(payload=done) if done.message_id == self.message_id:
                self.done = done
            case ErrorEvent(payload=error) if (
                error.message_id is not None and error.message_id == self.message_id
            ):
                self.error = error.message
            case MessageUpdatedEvent(payload=message) if (
                message.id == self.message_id and message.status is not MessageStatus.STREAMING
            ):
                self.final = message
                if message.content.startswith(self.text):
                    rest = message.content[len(self.text) :]
                else:  # deltas were skipped on a slow connection: the final text replaces them
                    rest = "\n" + message.content
                self.text = message.content
                return rest
        return ""


async def _next(queue: asyncio.Queue[ReceivedEvent], reader: asyncio.Task[None]) -> ReceivedEvent:
    """The next event, or the stream reader's error."""
    if not queue.empty():
        return queue.get_nowait()
    getter = asyncio.ensure_future(queue.get())
    await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
    if getter.done():
        return getter.result()
    getter.cancel()
    reader.result()
    raise CliError("the event stream ended")


async def _ask(
    state: CliState,
    client: ThreadlineClient,
    conversation: str,
    content: str,
    reply_to: str | None,
    json_output: bool,
) -> Answer:
    view = await client.conversation(conversation)
    if not view.assistant_replies:
        raise CliError(
            "The assistant does not reply in this conversation (it was created without assistant replies)"
        )
    opened = asyncio.Event()
    queue: asyncio.Queue[ReceivedEvent] = asyncio.Queue()

    def on_status(status: StreamStatus) -> None:
        if status.state is StreamState.OPEN:
            opened.set()

    async with client.stream(conversation, on_status=on_status) as stream:

        async def read() -> None:
            async for item in stream:
                queue.put_nowait(item)

        reader = asyncio.create_task(read())
        try:
            waiting = asyncio.ensure_future(opened.wait())
            await asyncio.wait({reader, waiting}, return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            if reader.done():
                reader.result()
            if reply_to is not None:
                question_id = (await client.reply(reply_to, content)).message_id
            else:
                question_id = (await client.post_root(conversation, content)).message_id
            answer = Answer(question_id)
            async with delayed_spinner(state.console, "Waiting for the assistant…", 0.0) as spinner:
                while not answer.finished:
                    piece = answer.take((await _next(queue, reader)).event)
                    if piece and not json_output:
                        if spinner is not None:
                            spinner.stop()
                        state.console.out(clean(piece), end="", highlight=False)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
    return answer


def ask(
    ctx: typer.Context,
    conversation: Annotated[str, typer.Argument(help="Conversation id.")],
    question: TextArg,
    reply_to: Annotated[
        str | None, typer.Option("--reply-to", help="Ask in a thread: reply to this message id.")
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the whole answer.")
    ] = 120.0,
    json_output: JsonOption = False,
) -> None:
    """Ask the assistant: post a message and print the answer as it streams."""
    state = state_of(ctx)
    content = text_of(question)

    async def action(client: ThreadlineClient) -> None:
        try:
            async with asyncio.timeout(timeout):
                answer = await _ask(state, client, conversation, content, reply_to, json_output)
        except TimeoutError:
            raise CliError(f"No complete answer within {timeout:g} s") from None
        assert answer.final is not None
        if json_output:
            done = answer.done.to_wire() if answer.done is not None else None
            print_json(
                {"question_id": str(answer.question_id), "answer": answer.final.to_wire(), "done": done}
            )
        else:
            state.console.out("")
        if answer.final.status is MessageStatus.FAILED:
            raise CliError(answer.error or "the assistant failed to answer")

    run(ctx, action, spinner=None)
