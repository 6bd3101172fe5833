"""``threadline tail`` as a process against the real stack through the edge: the live view and the JSON
lines keep going across a kill -9 and restart of the streamer, showing "reconnecting…" meanwhile, and print
nothing twice; the live view shows new threads, typing, presence, unread counts and the assistant's answer."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.clients.conftest import lift_posting_limit
from tests.clients.terminal import Terminal
from tests.support.api import PASSWORD, Api
from tests.support.conversations import add_participant, create_conversation
from tests.support.messages import post_root
from tests.support.stack import Stack, start_again
from tests.support.traffic import last_seq, post_replies, visible_seqs, wait_until
from threadline_client import ThreadlineClient
from threadline_devstack.services import ServiceProcess

pytestmark = pytest.mark.e2e

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")
LIVE_ENV = {"TTY_COMPATIBLE": "1", "COLUMNS": "160"}  # rich draws its Live view as on a terminal


@pytest.fixture(autouse=True)
async def streamer(stack: Stack) -> ServiceProcess:
    """The stack's streamer, started again if a test killed it."""
    return await start_again(stack.processes["streamer"])


@dataclass
class Output:
    """Everything a process writes on one pipe, collected as it comes."""

    stream: asyncio.StreamReader
    data: bytearray = field(default_factory=bytearray)

    async def collect(self) -> None:
        while chunk := await self.stream.read(65536):
            self.data.extend(chunk)

    @property
    def text(self) -> str:
        return ANSI.sub("", self.data.decode(errors="replace"))

    def json_lines(self) -> list[dict[str, Any]]:
        """The complete lines so far, parsed (a line still being written is left for later)."""
        complete = bytes(self.data[: self.data.rfind(b"\n") + 1]).decode()
        return [json.loads(line) for line in complete.splitlines() if line.strip()]


@dataclass
class Tail:
    process: asyncio.subprocess.Process
    stdout: Output
    stderr: Output

    async def wait_for(self, check: Callable[[Tail], bool], timeout: float = 15) -> None:
        await wait_until(lambda: check(self), timeout=timeout)

    async def interrupt(self) -> int:
        """Ctrl-C; the exit code. A process that has not ended 10 s later fails the test with what it was
        doing (its Python stack, by py-spy) and the end of its stderr."""
        self.process.send_signal(signal.SIGINT)
        try:
            return await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            pid = self.process.pid
            state = Path(f"/proc/{pid}/status").read_text() if Path(f"/proc/{pid}").exists() else "gone"
            stack = "(no py-spy)"
            py_spy = Path(sys.executable).parent / "py-spy"
            if py_spy.exists():
                dump = await asyncio.create_subprocess_exec(
                    str(py_spy), "dump", "--pid", str(pid),
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                )  # fmt: skip
                stack = (await dump.communicate())[0].decode(errors="replace")
            raise AssertionError(
                f"no exit 10 s after SIGINT; /proc status: {state[:400]}\n{stack}\n"
                f"stderr: {self.stderr.text[-1500:]}"
            ) from None


@pytest.fixture
async def tails(stack: Stack, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await tail(terminal, *args, **env)``: ``threadline tail`` running, its output collected."""
    running: list[tuple[Tail, list[asyncio.Task[None]]]] = []

    async def start(terminal: Terminal, *args: str, **env: str) -> Tail:
        process = await terminal.spawn("tail", *args, **env)
        assert process.stdout is not None and process.stderr is not None
        tail = Tail(process, Output(process.stdout), Output(process.stderr))
        tasks = [asyncio.create_task(tail.stdout.collect()), asyncio.create_task(tail.stderr.collect())]
        running.append((tail, tasks))
        return tail

    yield start
    for tail, tasks in running:
        if tail.process.returncode is None:
            tail.process.kill()
            await tail.process.wait()
        await asyncio.gather(*tasks, return_exceptions=True)


def durable_ids(tail: Tail) -> list[int]:
    return [line["id"] for line in tail.stdout.json_lines() if "id" in line]


@pytest.mark.timeout(90)
async def test_tail_keeps_going_across_a_kill_9_of_the_streamer_and_prints_nothing_twice(
    stack: Stack,
    api: Api,
    pool: asyncpg.Pool,
    streamer: ServiceProcess,
    tails: Callable[..., Any],
    tmp_path: Path,
) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation = await create_conversation(api, alice, is_group=True, assistant_replies=False)
    await add_participant(api, alice, conversation, bob)
    root = await post_root(api, alice, conversation, "the long thread")
    async with ThreadlineClient(stack.edge_url, token=alice.token) as admin:
        await lift_posting_limit(admin)
    terminal = Terminal(stack.edge_url, tmp_path / "bob")
    await terminal.ok("login", "bob", "--password", PASSWORD)

    json_tail: Tail = await tails(terminal, conversation, "--json")
    live_tail: Tail = await tails(terminal, conversation, **LIVE_ENV)
    await json_tail.wait_for(lambda t: len(t.stdout.json_lines()) > 0)  # the presence snapshot: subscribed
    await live_tail.wait_for(lambda t: "● bob" in t.stdout.text or "○ bob" in t.stdout.text)
    begin = await last_seq(pool, conversation)

    async with asyncio.timeout(60), asyncio.TaskGroup() as tasks:
        writing = tasks.create_task(post_replies(api, [alice], root, 40, pause=0.05))
        await json_tail.wait_for(lambda t: len(durable_ids(t)) >= 6)
        assert streamer.proc is not None
        streamer.proc.kill()
        await asyncio.to_thread(streamer.proc.wait, 10)
        await live_tail.wait_for(lambda t: "reconnecting…" in t.stdout.text)
        await json_tail.wait_for(lambda t: "reconnecting…" in t.stderr.text)
        streamer.start()
        await asyncio.to_thread(streamer.wait_ready, 30)
        await writing
    expected = await visible_seqs(pool, conversation, bob, begin)
    await json_tail.wait_for(lambda t: durable_ids(t)[-1:] == expected[-1:], timeout=20)
    await live_tail.wait_for(lambda t: re.search(r"\breply 39\b", t.stdout.text) is not None, timeout=20)
    await asyncio.sleep(0.3)  # a duplicate would arrive now
    assert await json_tail.interrupt() == 130
    assert await live_tail.interrupt() == 130

    assert durable_ids(json_tail) == expected, "every event once, in order, across the crash"
    shown = live_tail.stdout.text
    assert [len(re.findall(rf"\breply {n}\b", shown)) for n in range(40)] == [1] * 40
    assert "Traceback" not in json_tail.stderr.text + live_tail.stderr.text


async def test_the_live_view_shows_threads_typing_presence_unread_and_the_answer_as_it_grows(
    stack: Stack, api: Api, tails: Callable[..., Any], tmp_path: Path
) -> None:
    alice_p, bob_p = await api.persona("alice"), await api.persona("bob")
    conversation = await create_conversation(api, alice_p, is_group=True, assistant_replies=True)
    await add_participant(api, alice_p, conversation, bob_p)
    terminal = Terminal(stack.edge_url, tmp_path / "bob")
    await terminal.ok("login", "bob", "--password", PASSWORD)
    tail: Tail = await tails(terminal, conversation, **LIVE_ENV)
    await tail.wait_for(lambda t: "● bob" in t.stdout.text)  # its own heartbeat made bob online

    async with ThreadlineClient(stack.edge_url, token=alice_p.token) as alice:
        await alice.heartbeat()
        await alice.typing(conversation, 10)
        await tail.wait_for(lambda t: "✎ alice is typing a new thread…" in t.stdout.text)
        await alice.post_root(conversation, "tell me a long story please, slowly, word by word")
        await tail.wait_for(lambda t: "assistant replied in" in t.stdout.text)
    assert await tail.interrupt() == 130

    shown = tail.stdout.text
    assert "── Plans · 2 online" in shown and "● alice" in shown
    assert shown.count("alice started thread") == 1
    growing = re.findall(r"assistant ▸ ([^▌\n]*)▌", shown)
    assert len(set(growing)) >= 3, "the answer grew token by token in the live area"
    assert "2 unread" in shown  # alice's root and the assistant's answer
