"""The ``threadline`` CLI against the real stack through the edge: each command as a person would use it,
with the session kept in a private file, ``--json`` on read commands, and errors as one line."""

from __future__ import annotations

import asyncio
import json
import stat
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner

from tests.clients.terminal import Terminal
from tests.support.api import PASSWORD, Api
from tests.support.stack import Stack
from threadline_client.cli import app
from threadline_devstack.servers import free_port

pytestmark = pytest.mark.e2e

TerminalFor = Callable[[str], Terminal]


@pytest.fixture
def terminal_for(stack: Stack, tmp_path: Path, pool: asyncpg.Pool) -> TerminalFor:
    """``terminal_for(name)``: that person's terminal (their own config directory)."""
    return lambda name: Terminal(stack.edge_url, tmp_path / name)


async def signed_up(terminal_for: TerminalFor, *names: str) -> list[Terminal]:
    """The first person sets Threadline up, the others register; all logged in."""
    terminals = []
    for n, name in enumerate(names):
        terminal = terminal_for(name)
        command = "setup" if n == 0 else "register"
        await terminal.ok(command, name, f"{name}@example.com", "--password", PASSWORD)
        terminals.append(terminal)
    return terminals


async def test_setup_login_whoami_and_logout_keep_the_token_in_a_private_file(
    terminal_for: TerminalFor,
) -> None:
    alice = terminal_for("alice")
    out = await alice.ok(
        "setup", "alice", "alice@example.com", "--password", PASSWORD, "--display-name", "Alice"
    )
    assert "Threadline is set up; alice is its admin." in out
    credentials = alice.config_dir / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    token = json.loads(credentials.read_text())["servers"][alice.url]["token"]

    assert "alice (Alice) <alice@example.com>  roles: admin, member" in await alice.ok("whoami")
    assert (await alice.json("whoami"))["user"]["username"] == "alice"
    assert "Logged out of" in await alice.ok("logout")
    assert alice.url not in json.loads(credentials.read_text())["servers"]
    gone = await alice("whoami")
    assert (gone.exit_code, gone.stderr) == (
        1,
        f"Error: Not logged in to {alice.url}: run `threadline login` first\n",
    )

    assert "Logged in as alice" in await alice.ok("login", "alice@example.com", input=f"{PASSWORD}\n")
    fresh = json.loads(credentials.read_text())["servers"][alice.url]["token"]
    assert fresh != token
    elsewhere = terminal_for("alice-laptop")
    stale = await elsewhere("login", "--token", token)  # revoked by the logout
    assert (stale.exit_code, stale.stderr) == (1, "Error: Unauthorized: invalid or revoked session\n")
    assert "Logged in as alice" in await elsewhere.ok("login", "--token", fresh)
    assert (await elsewhere.json("whoami"))["user"]["username"] == "alice"

    bob = terminal_for("bob")
    assert "Logged in as bob" in await bob.ok("register", "bob", "bob@example.com", "--password", PASSWORD)


async def test_conversations_create_list_show_members_invite_accept_and_add(
    terminal_for: TerminalFor,
) -> None:
    alice, bob, _ = await signed_up(terminal_for, "alice", "bob", "carol")

    created = await alice.json("conversations", "create", "Trip plans", "--group")
    conversation = created["conversation_id"]
    assert "Created conversation" in await alice.ok("conversations", "create", "Solo", "--no-assistant")
    listed = await alice.json("conversations")
    assert [c["title"] for c in listed["conversations"]] == ["Solo", "Trip plans"]
    table = await alice.ok("conversations", "list")
    assert conversation in table and "Trip plans" in table and "owner" in table

    invite = await alice.json("conversations", "invite", conversation, "bob@example.com", "--role", "viewer")
    shown_invite = await alice.ok("conversations", "invite", conversation, "carol@example.com")
    assert "threadline conversations accept " in shown_invite
    accepted = await bob.json("conversations", "accept", invite["token"])
    assert accepted == {"conversation_id": conversation, "role": "viewer"}
    assert "as viewer" in await bob.ok("conversations", "accept", invite["token"])
    assert "carol is a admin" in await alice.ok(
        "conversations", "add", conversation, "CAROL", "--role", "admin"
    )

    view = await bob.json("conversations", "show", conversation)
    assert {p["username"]: p["role"] for p in view["participants"]} == {
        "alice": "owner",
        "bob": "viewer",
        "carol": "admin",
    }
    shown = await bob.ok("conversations", "show", conversation)
    assert "Trip plans" in shown and "group · assistant replies off · you are viewer" in shown
    members = await alice.json("conversations", "members", conversation)
    assert [p["presence"]["status"] for p in members["participants"]] == ["offline"] * 3
    assert "○ offline" in await alice.ok("conversations", "members", conversation)
    missing = await alice("conversations", "add", conversation, "nobody")
    assert (missing.exit_code, missing.stderr) == (1, "Error: No user named 'nobody'\n")


async def test_post_reply_edit_delete_then_threads_and_the_reply_tree(terminal_for: TerminalFor) -> None:
    alice, bob = await signed_up(terminal_for, "alice", "bob")
    conversation = (await alice.json("conversations", "create", "Plans", "--group"))["conversation_id"]
    await alice.ok("conversations", "add", conversation, "bob")

    root = (await alice.json("post", conversation, "where shall we go?"))["root_id"]
    first = (await bob.json("reply", root, "the sea"))["message_id"]
    assert "(depth 3)" in await alice.ok("reply", first, "-", input="which sea?\n")
    second = (await bob.json("reply", root, "or the hills"))["message_id"]
    assert "Posted thread" in await bob.ok("post", conversation, "another topic")
    assert f"Edited {first}" in await bob.ok("edit", first, "the North Sea", "--reason", "precision")
    assert f"Deleted {second}" in await bob.ok("delete", second)

    threads = await alice.json("threads", conversation)
    assert [(t["root_excerpt"], t["message_count"], t["unread"]) for t in threads["threads"]] == [
        ("another topic", 1, 1),
        ("where shall we go?", 4, 0),  # she replied after "the sea"; "the hills" are deleted
    ]
    listed = await alice.ok("threads", conversation)
    assert root in listed and "where shall we go?" in listed and "alice" in listed

    tree = await alice.json("show", root)
    assert [m["content"] for m in tree["messages"]] == [
        "where shall we go?",
        "the North Sea",
        "which sea?",
        "",
    ]
    drawn = (await alice.ok("show", root)).splitlines()
    # rich's tree guides show the nesting: the reply to a reply sits one level deeper.
    depth = {
        text: line.index(text)
        for line in drawn
        for text in ("where shall", "the North Sea", "which sea?")
        if text in line
    }
    assert depth["where shall"] < depth["the North Sea"] < depth["which sea?"]
    assert any("(deleted)" in line for line in drawn) and any("(edited)" in line for line in drawn)


async def test_ask_prints_the_assistant_answer_token_by_token(terminal_for: TerminalFor) -> None:
    (alice,) = await signed_up(terminal_for, "alice")
    conversation = (await alice.json("conversations", "create", "Ask me"))["conversation_id"]
    # Forty words, one token each: over a second of streaming, so that a stalled host cannot merge them all
    # into one or two writes.
    question = " ".join(f"word{n}" for n in range(40))
    process = await alice.spawn("ask", conversation, question)
    assert process.stdout is not None
    pieces: list[tuple[float, bytes]] = []
    async with asyncio.timeout(30):
        while piece := await process.stdout.read(4096):
            pieces.append((time.monotonic(), piece))
        assert await process.wait() == 0
    output = b"".join(p for _, p in pieces).decode()

    assert output == question + "\n"  # the echo assistant answers with the question
    assert len(pieces) >= 3, f"the answer arrived in {len(pieces)} writes, not token by token"
    assert pieces[-1][0] - pieces[0][0] > 0.1

    root = (await alice.json("threads", conversation))["threads"][0]["root_id"]
    asked = await alice.json("ask", conversation, "and this?", "--reply-to", root)
    assert (asked["answer"]["content"], asked["answer"]["depth"]) == ("and this?", 3)
    assert asked["done"]["finish_reason"] == "stop"

    quiet = (await alice.json("conversations", "create", "No assistant", "--group"))["conversation_id"]
    refused = await alice("ask", quiet, "anyone?")
    assert refused.exit_code == 1
    assert refused.stderr.startswith("Error: The assistant does not reply in this conversation")


async def test_errors_print_the_problem_on_one_line_and_exit_non_zero(
    api: Api, terminal_for: TerminalFor
) -> None:
    alice, mallory = await signed_up(terminal_for, "alice", "mallory")
    conversation = (await alice.json("conversations", "create", "Private"))["conversation_id"]

    wrong = await terminal_for("someone")("login", "alice", "--password", "not the password")
    assert (wrong.exit_code, wrong.stdout, wrong.stderr) == (
        1,
        "",
        "Error: Unauthorized: invalid credentials\n",
    )

    refused = await mallory("threads", conversation)
    assert refused.exit_code == 1 and refused.stdout == ""
    assert refused.stderr == "Error: Forbidden: not a participant of this conversation\n"

    for _ in range(20):  # the per-account login throttle: 10 a minute
        throttled = await terminal_for("someone")("login", "alice", "--password", "not the password")
        if "Unauthorized" not in throttled.stderr:
            break
    assert throttled.exit_code == 1 and throttled.stdout == ""
    assert throttled.stderr.startswith("Error: Too Many Requests: rate limit exceeded (retry in ")
    assert throttled.stderr.count("\n") == 1 and "Traceback" not in throttled.output

    nowhere = f"http://127.0.0.1:{free_port()}"  # --url wins over THREADLINE_URL
    unreachable = await alice("--url", nowhere, "login", "alice", "--password", PASSWORD)
    assert unreachable.exit_code == 1
    assert unreachable.stderr == f"Error: Connection failed: cannot reach {nowhere} (connection refused)\n"


async def test_login_takes_a_token_from_the_environment_out_of_sight_of_ps(terminal_for: TerminalFor) -> None:
    [alice] = await signed_up(terminal_for, "alice")
    token = json.loads((alice.config_dir / "credentials.json").read_text())["servers"][alice.url]["token"]
    laptop = terminal_for("alice-laptop")
    runner_env = {**laptop.env, "THREADLINE_TOKEN": token}
    result = await asyncio.to_thread(lambda: CliRunner().invoke(app, ["login"], env=runner_env))
    assert result.exit_code == 0, result.output
    assert "Logged in as alice" in result.stdout
    assert (await laptop.json("whoami"))["user"]["username"] == "alice"


async def test_arguments_that_begin_with_a_dash_are_arguments(terminal_for: TerminalFor) -> None:
    """Invite tokens are base64url (they may begin with "-"), and so may a message."""
    [alice] = await signed_up(terminal_for, "alice")
    conversation = (await alice.json("conversations", "create", "Weather", "--group"))["conversation_id"]
    root = (await alice.json("post", conversation, "-5 degrees tonight"))["root_id"]
    assert "Replied" in await alice.ok("reply", root, "--sure?")
    tree = await alice.json("show", root)
    assert [m["content"] for m in tree["messages"]] == ["-5 degrees tonight", "--sure?"]

    unknown = await alice("conversations", "accept", "-onNAenX_bN-eocXkkMXq-mEsQlVtOAG2q9CbAg1QMg")
    assert unknown.exit_code == 1
    assert unknown.stderr.startswith("Error: Not Found"), unknown.stderr
