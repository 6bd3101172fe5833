"""Fixtures of the presence tests: the presence app served in-process over a real socket, sharing the api
fixture's FakeClock (so the api's sessions and presence time move together), plus rows written below the
API (conversations, memberships, messages)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette

from tests.support.api import Api, Persona
from tests.support.http import serve_app
from threadline_presence.app import create_app
from threadline_presence.protocol import PresenceHttpProtocol
from threadline_presence.settings import PresenceSettings
from threadline_shared.clock import FakeClock
from threadline_shared.dto.enums import ConversationRole, MembershipAction
from threadline_shared.dto.events import MembershipChanged, MembershipChangedEvent
from threadline_shared.eventlog import LogEntry, append_events
from threadline_shared.ids import path_label, uuid7

SWEEP_INTERVAL_MS = 20


@dataclass
class Presence:
    url: str
    http: httpx.AsyncClient
    clock: FakeClock
    app: Starlette

    async def heartbeat(self, user: Persona, body: Any = None, **kwargs: Any) -> httpx.Response:
        return await self.http.post("/api/presence/heartbeat", headers=user.bearer, json=body, **kwargs)

    async def typing(
        self, user: Persona, conversation_id: UUID, seconds: int, root_id: UUID | None = None
    ) -> httpx.Response:
        body: dict[str, Any] = {"conversation_id": str(conversation_id), "seconds": seconds}
        if root_id is not None:
            body["root_id"] = str(root_id)
        return await self.http.post("/api/typing", headers=user.bearer, json=body)

    async def snapshot(self, user: Persona, conversation_id: UUID | str) -> httpx.Response:
        return await self.http.get(f"/api/conversations/{conversation_id}/presence", headers=user.bearer)

    def browser(self, user: Persona, *, csrf: bool = True) -> httpx.AsyncClient:
        headers = {"X-CSRF-TOKEN": user.csrf_token} if csrf else {}
        cookies = {"SESSION_ID": user.token, "CSRF-TOKEN": user.csrf_token}
        return httpx.AsyncClient(base_url=self.url, cookies=cookies, headers=headers)


@asynccontextmanager
async def running_presence(
    database_url: str,
    redis_url: str,
    clock: FakeClock | None,
    *,
    protocol: type[asyncio.Protocol] | str = PresenceHttpProtocol,
    **overrides: Any,
) -> AsyncIterator[Presence]:
    """The presence app on a real socket; ``protocol`` is uvicorn's protocol (the service's own by default,
    ``"httptools"`` for plain uvicorn, where heartbeats take the ASGI lean path)."""
    overrides.setdefault("presence_sweep_interval_ms", SWEEP_INTERVAL_MS)
    settings = PresenceSettings.load(env="test", database_url=database_url, redis_url=redis_url, **overrides)
    assert isinstance(settings, PresenceSettings)
    app = create_app(settings, clock=clock)
    async with serve_app(app, http=protocol) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        yield Presence(url, http, clock or FakeClock(), app)


@pytest.fixture
async def presence(api: Api, database_url: str, redis_url: str) -> AsyncIterator[Presence]:
    """The presence service over real HTTP on the module's database and the suite's Redis (``api.clock``)."""
    async with running_presence(database_url, redis_url, api.clock) as running:
        yield running


async def create_conversation(pool: asyncpg.Pool, owner: Persona, **members: tuple[Persona, str]) -> UUID:
    """A conversation owned by ``owner``; ``members`` maps a label to (persona, role)."""
    conversation_id: UUID = await pool.fetchval(
        "INSERT INTO conversations (title, assistant_replies, created_by) "
        "VALUES ('Plans', true, $1) RETURNING id",
        owner.id,
    )
    await join(pool, conversation_id, owner, "owner")
    for persona, role in members.values():
        await join(pool, conversation_id, persona, role)
    return conversation_id


async def join(pool: asyncpg.Pool, conversation_id: UUID, user: Persona, role: str) -> None:
    await pool.execute(
        "INSERT INTO participants (conversation_id, user_id, role) VALUES ($1, $2, $3)",
        conversation_id,
        user.id,
        role,
    )


async def join_announced(
    pool: asyncpg.Pool, conversation_id: UUID, user_id: UUID, role: str = "member"
) -> None:
    """A new membership and its ``membership.changed`` event in one transaction, as the api writes them."""
    event = MembershipChangedEvent(
        payload=MembershipChanged(
            conversation_id=conversation_id,
            user_id=user_id,
            role=ConversationRole(role),
            action=MembershipAction.ADDED,
        )
    )
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO participants (conversation_id, user_id, role) VALUES ($1, $2, $3)",
            conversation_id,
            user_id,
            role,
        )
        await append_events(conn, conversation_id, [LogEntry(event)])


async def leave(pool: asyncpg.Pool, conversation_id: UUID, user: Persona) -> None:
    await pool.execute(
        "UPDATE participants SET left_at = now() "
        "WHERE conversation_id = $1 AND user_id = $2 AND left_at IS NULL",
        conversation_id,
        user.id,
    )


async def post_root(pool: asyncpg.Pool, conversation_id: UUID, author: Persona) -> UUID:
    """A thread root row (message and thread), as the posting code writes it."""
    root_id = uuid7()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """
            INSERT INTO messages (id, conversation_id, root_id, author_user_id, role, content, path, depth)
            VALUES ($1, $2, $1, $3, 'user', 'hello', $4::ltree, 1)
            """,
            root_id,
            conversation_id,
            author.id,
            path_label(root_id),
        )
        await conn.execute(
            "INSERT INTO threads (root_id, conversation_id, created_at, last_activity_at) "
            "VALUES ($1, $2, now(), now())",
            root_id,
            conversation_id,
        )
    return root_id


async def post_reply(pool: asyncpg.Pool, root_id: UUID, author: Persona) -> UUID:
    reply_id = uuid7()
    await pool.execute(
        """
        INSERT INTO messages
            (id, conversation_id, root_id, parent_id, author_user_id, role, content, path, depth)
        SELECT $1, conversation_id, id, id, $2, 'user', 'hi', (path::text || '.' || $3)::ltree, 2
        FROM messages WHERE id = $4
        """,
        reply_id,
        author.id,
        path_label(reply_id),
        root_id,
    )
    return reply_id
