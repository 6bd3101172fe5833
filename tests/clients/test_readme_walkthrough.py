"""The README's "Use it" terminal walkthrough, run exactly as written, by two people through the edge:
Alice sets Threadline up, creates a conversation and invites Bob; Bob registers and accepts; both talk in a
thread; the assistant answers token by token; Bob's live view shows Alice's next reply. The ids the commands
print are what the next commands use, as a reader would copy them."""

from __future__ import annotations

import asyncio
import re
import shlex
from pathlib import Path

import asyncpg
import pytest

from tests.clients.terminal import Terminal
from tests.support.api import PASSWORD
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
PRINTED = {
    "CONV": re.compile(r"Created conversation (\S+)"),
    "TOKEN": re.compile(r"threadline conversations accept (\S+)"),
    "THREAD": re.compile(r"Posted thread (\S+)"),
}


def terminal_walkthrough() -> list[tuple[str, list[str]]]:
    """``(who, argv)`` of each command of the README's terminal block, comments dropped."""
    text = README.read_text()
    section = text[text.index("**Terminal.**") : text.index("**Python.**")]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    steps = []
    for line in block.splitlines():
        command = line.split("  #", 1)[0].strip()
        who = "bob" if command.startswith("bob$ ") else "alice"
        argv = shlex.split(command.removeprefix("bob$ "))
        assert argv[0] == "threadline", line
        steps.append((who, argv[1:]))
    return steps


@pytest.mark.timeout(60)
async def test_the_readme_terminal_walkthrough_works_as_written(
    stack: Stack, tmp_path: Path, pool: asyncpg.Pool
) -> None:
    people = {name: Terminal(stack.edge_url, tmp_path / name) for name in ("alice", "bob")}
    steps = terminal_walkthrough()
    assert [argv[0] for _, argv in steps] == [
        "setup", "conversations", "conversations", "register", "conversations",
        "post", "reply", "show", "ask", "tail",
    ]  # fmt: skip
    ids: dict[str, str] = {}
    outputs: list[str] = []
    for who, argv in steps[:-1]:
        args = [ids.get(arg, arg) for arg in argv]
        typed = f"{PASSWORD}\n{PASSWORD}\n" if args[0] in ("setup", "register") else None
        out = await people[who].ok(*args, input=typed)
        outputs.append(out)
        for name, pattern in PRINTED.items():
            if name not in ids and (found := pattern.search(out)):
                ids[name] = found[1]
    assert set(ids) == set(PRINTED)

    tree = outputs[7]
    assert "where shall we go?" in tree and "the sea" in tree
    answer = outputs[8]
    assert "summarise our plans" in answer  # the echo assistant answers with the question

    who, argv = steps[-1]
    tail = await people[who].spawn(*[ids.get(arg, arg) for arg in argv], "--json")
    assert tail.stdout is not None and tail.stderr is not None
    try:
        async with asyncio.timeout(20):
            assert await tail.stderr.readline() == b"connected\n"  # live from here on
            await people["alice"].ok("reply", ids["THREAD"], "or the mountains")
            while b"or the mountains" not in (line := await tail.stdout.readline()):
                assert line, "tail ended"
    finally:
        tail.kill()
        await tail.wait()
