"""Thread and message steps over the API (each asserting its success status), rows written below the API
(long chains, big threads, assistant messages and chunks), the durable events left in the log, and the
posting limit raised for tests that post a lot."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from tests.support.api import Api, Persona, running_api
from tests.support.conversations import add_participant, create_conversation
from threadline_shared.ids import path_label, uuid7


@dataclass
class Room:
    """A conversation with alice (owner), bob (member), carol (viewer); dave is not in it."""

    id: str
    alice: Persona
    bob: Persona
    carol: Persona
    dave: Persona


async def open_room(api: Api, **fields: Any) -> Room:
    alice, bob, carol, dave = [await api.persona(name) for name in ("alice", "bob", "carol", "dave")]
    conversation_id = await create_conversation(api, alice, **{"assistant_replies": False, **fields})
    await add_participant(api, alice, conversation_id, bob)
    await add_participant(api, alice, conversation_id, carol, "viewer")
    return Room(conversation_id, alice, bob, carol, dave)


async def raise_posting_limit(pool: asyncpg.Pool) -> None:
    """Raise the ``conversation.post`` profile to 10,000 per second, burst 10,000 (and announce the change
    on ``tl_limits``). An api reads the profile when it starts: see :func:`unlimited_api`."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """
            UPDATE rate_limit_profiles SET params = '{"requests_per_second": 10000, "burst": 10000}'
            WHERE name = 'conversation.post'
            """
        )
        await conn.execute("NOTIFY tl_limits")


@asynccontextmanager
async def unlimited_api(
    pool: asyncpg.Pool, database_url: str, redis_url: str, **overrides: Any
) -> AsyncIterator[Api]:
    """An api started after the posting limit was raised, with a default HTTP burst no test reaches, for
    tests that post a lot."""
    await raise_posting_limit(pool)
    overrides.setdefault("rate_limit_default_burst", 100_000)
    async with running_api(database_url, redis_url, **overrides) as api:
        yield api


async def post_root(
    api: Api, user: Persona, conversation_id: str, content: str = "hello", **fields: Any
) -> str:
    """Post a thread root; its id."""
    response = await api.post(
        f"/api/threads/{conversation_id}/root", user, json={"content": content, **fields}
    )
    assert response.status_code == 201, response.text
    message_id: str = response.json()["message_id"]
    return message_id


async def reply(api: Api, user: Persona, parent_id: str, content: str = "reply", **fields: Any) -> str:
    """Reply to a message; the reply's id."""
    response = await api.post(f"/api/messages/{parent_id}/reply", user, json={"content": content, **fields})
    assert response.status_code == 201, response.text
    message_id: str = response.json()["message_id"]
    return message_id


async def tree(api: Api, user: Persona, root_id: str, **params: Any) -> dict[str, Any]:
    response = await api.get(f"/api/threads/{root_id}/tree", user, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def view(api: Api, user: Persona, root_id: str, message_id: str) -> dict[str, Any]:
    """A message as the tree shows it (threads here stay below one page)."""
    (found,) = [m for m in (await tree(api, user, root_id))["messages"] if m["id"] == message_id]
    return found


async def thread_list(api: Api, user: Persona, conversation_id: str, **params: Any) -> dict[str, Any]:
    response = await api.get(f"/api/conversations/{conversation_id}/threads", user, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def unread_counts(api: Api, user: Persona, conversation_id: str) -> dict[str, int]:
    """``{root_id: unread}`` from ``GET .../unread``, checking it lists only unread threads, newest first."""
    response = await api.get(f"/api/conversations/{conversation_id}/unread", user)
    assert response.status_code == 200, response.text
    threads = response.json()["threads"]
    assert [t["root_id"] for t in threads] == sorted((t["root_id"] for t in threads), reverse=True)
    assert all(t["unread"] > 0 for t in threads)
    return {t["root_id"]: t["unread"] for t in threads}


async def insert_thread(
    pool: asyncpg.Pool,
    conversation_id: str,
    author: UUID | None,
    parents: Sequence[int | None],
    *,
    role: str = "user",
    status: str = "complete",
) -> list[UUID]:
    """A whole thread in one transaction, as the posting code writes it. ``parents[i]`` is the index of
    message i's parent (None for the root, which must come first); returns the ids in that order."""
    ids = [uuid7() for _ in parents]
    paths: list[str] = []
    rows = []
    for index, parent in enumerate(parents):
        message_id = ids[index]
        if parent is None:
            assert index == 0
            path, parent_id = path_label(message_id), None
        else:
            path, parent_id = f"{paths[parent]}.{path_label(message_id)}", ids[parent]
        paths.append(path)
        rows.append(
            (message_id, UUID(conversation_id), ids[0], parent_id, author, role, f"message {index}", path,
             path.count(".") + 1, status)
        )  # fmt: skip
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(
            """
            INSERT INTO messages (id, conversation_id, root_id, parent_id, author_user_id, role, content,
                                  path, depth, status)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8::ltree, $9, $10)
            """,
            rows,
        )
        await conn.execute(
            """
            INSERT INTO threads (root_id, conversation_id, created_at, last_activity_at, message_count)
            VALUES ($1, $2, now(), now(), $3)
            """,
            ids[0],
            UUID(conversation_id),
            len(ids),
        )
    return ids


async def insert_chain(pool: asyncpg.Pool, conversation_id: str, author: UUID, length: int) -> list[UUID]:
    """A thread that is one chain of ``length`` messages, each replying to the one before."""
    return await insert_thread(pool, conversation_id, author, [None, *range(length - 1)])


async def insert_chunks(pool: asyncpg.Pool, message_id: UUID, contents: Sequence[str]) -> None:
    await pool.executemany(
        "INSERT INTO message_chunks (message_id, idx, content) VALUES ($1, $2, $3)",
        [(message_id, idx, content) for idx, content in enumerate(contents)],
    )


async def events_after(pool: asyncpg.Pool, conversation_id: str, seq: int = 0) -> list[dict[str, Any]]:
    """Durable events with a sequence number above ``seq``, by seq: ``{seq, type, audience, envelope,
    created_at}`` with ``audience`` a user id string or None (everyone)."""
    rows = await pool.fetch(
        """
        SELECT seq, type, envelope, audience_user_id, created_at FROM event_log
        WHERE conversation_id = $1 AND seq > $2 ORDER BY seq
        """,
        UUID(conversation_id),
        seq,
    )
    return [
        {
            "seq": row["seq"],
            "type": row["type"],
            "audience": str(row["audience_user_id"]) if row["audience_user_id"] else None,
            "envelope": json.loads(row["envelope"]),
            "created_at": row["created_at"],
        }
        for row in rows
    ]


async def last_seq(pool: asyncpg.Pool, conversation_id: str) -> int:
    seq: int = await pool.fetchval("SELECT last_seq FROM conversations WHERE id = $1", UUID(conversation_id))
    return seq
