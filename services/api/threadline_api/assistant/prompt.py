"""The prompt of an assistant reply (contract 9.3), built from the triggering message's ancestor chain.

1. Chain: the triggering message and its ancestors, root first. Sibling branches never enter.
2. Deleted messages and messages with blank content are skipped; content is trimmed.
3. System text: the configured system prompt (if set), then every ``system`` message, joined with ``\\n``.
4. Chat messages: every other chain message, as ``user``, ``assistant`` or ``tool``; chat providers get
   ``tool`` as ``user`` with ``Tool: `` in front.
5. Flattened text: ``User: ...``, ``Assistant: ...``, ``Tool: ...`` lines, then ``Assistant:`` unless the last
   line already starts with it. Word counts of the system text plus the flattened text give the prompt usage
   when the provider reports none (9.6).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg

from threadline_shared.db import Conn

TurnRole = Literal["user", "assistant", "tool"]
_LINE_PREFIX: dict[TurnRole, str] = {"user": "User:", "assistant": "Assistant:", "tool": "Tool:"}

_CHAIN = """
SELECT role, content, deleted_at FROM messages WHERE id = ANY($1::uuid[]) ORDER BY depth
"""


@dataclass(frozen=True, slots=True)
class ChainMessage:
    role: str
    content: str
    deleted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Turn:
    role: TurnRole
    text: str


@dataclass(frozen=True, slots=True)
class Prompt:
    system: str | None
    turns: tuple[Turn, ...]

    def chat_messages(self) -> list[dict[str, str]]:
        """OpenAI-style ``messages``: the system text first (when present), then the turns."""
        messages = [{"role": "system", "content": self.system}] if self.system else []
        for turn in self.turns:
            if turn.role == "tool":
                messages.append({"role": "user", "content": f"Tool: {turn.text}"})
            else:
                messages.append({"role": turn.role, "content": turn.text})
        return messages

    def flattened(self) -> str:
        lines = [f"{_LINE_PREFIX[turn.role]} {turn.text}" for turn in self.turns]
        if not lines or not lines[-1].startswith("Assistant:"):
            lines.append("Assistant:")
        return "\n".join(lines)

    def word_count(self) -> int:
        """Whitespace-separated words of the system text plus the flattened text (9.6 usage fallback)."""
        return word_count(self.system or "") + word_count(self.flattened())


def word_count(text: str) -> int:
    return len(text.split())


def build_prompt(chain: Iterable[ChainMessage], system_prompt: str = "") -> Prompt:
    """The prompt of a chain given root first."""
    system_parts = [system_prompt] if system_prompt else []
    turns: list[Turn] = []
    for message in chain:
        text = message.content.strip()
        if message.deleted_at is not None or not text:
            continue
        if message.role == "system":
            system_parts.append(text)
        elif message.role in ("user", "assistant", "tool"):
            turns.append(Turn(message.role, text))  # type: ignore[arg-type]
    system = "\n".join(system_parts)
    return Prompt(system or None, tuple(turns))


def ancestor_ids(path: str) -> list[UUID]:
    """Every id a message path lists (1.2), root first, the message itself last."""
    return [UUID(label[1:]) for label in path.split(".")]


async def load_chain(conn: Conn, trigger_path: str) -> list[ChainMessage]:
    """The triggering message and its ancestors, root first, as they are now."""
    rows = await conn.fetch(_CHAIN, ancestor_ids(trigger_path))
    return [chain_message(row) for row in rows]


def chain_message(row: Mapping[str, Any] | asyncpg.Record) -> ChainMessage:
    return ChainMessage(row["role"], row["content"], row["deleted_at"])
