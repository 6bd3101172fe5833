"""``ThreadlineClient``: every route of the contract as a typed async method, and the resuming stream.

::

    async with ThreadlineClient("http://127.0.0.1:8080") as client:
        await client.login("alice", "correct horse battery staple")
        conversation = await client.create_conversation("Plans")
        await client.post_root(conversation.conversation_id, "hello")
        async for received in client.stream(conversation.conversation_id):
            print(received.seq, received.type)
"""

from __future__ import annotations

import random
from types import TracebackType

import httpx

from threadline_client.http import DEFAULT_TIMEOUT_SECONDS, DEFAULT_URL, HttpSession
from threadline_client.routes.auth import AuthRoutes
from threadline_client.routes.base import Id, ident
from threadline_client.routes.conversations import ConversationRoutes
from threadline_client.routes.limits import LimitRoutes
from threadline_client.routes.messages import MessageRoutes
from threadline_client.routes.presence import PresenceRoutes
from threadline_client.stream import (
    DEFAULT_MAX_DELAY_SECONDS,
    DEFAULT_READ_TIMEOUT_SECONDS,
    EventStream,
    ReconnectPolicy,
    StatusCallback,
)


class ThreadlineClient(AuthRoutes, ConversationRoutes, MessageRoutes, PresenceRoutes, LimitRoutes):
    """A client of one Threadline server, through its edge (``base_url``, every ``/api`` route behind it).

    Authenticate with ``token=`` (a session token, sent as bearer), or call :meth:`login`. With
    ``use_cookies=True`` the session travels in cookies and the CSRF double submit is handled.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        token: str | None = None,
        use_cookies: bool = False,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.session = HttpSession(
            base_url, token=token, use_cookies=use_cookies, timeout=timeout, transport=transport
        )

    @property
    def base_url(self) -> str:
        return self.session.base_url

    @property
    def token(self) -> str | None:
        """The bearer session token (after :meth:`login` or :meth:`refresh`, the new one)."""
        return self.session.token

    async def aclose(self) -> None:
        await self.session.aclose()

    async def __aenter__(self) -> ThreadlineClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def stream(
        self,
        conversation_id: Id,
        last_event_id: int | None = None,
        *,
        on_status: StatusCallback | None = None,
        max_delay_seconds: float = DEFAULT_MAX_DELAY_SECONDS,
        read_timeout: float = DEFAULT_READ_TIMEOUT_SECONDS,
        rng: random.Random | None = None,
    ) -> EventStream:
        """``GET /api/stream/conversations/{conversation_id}`` as a self-resuming iterator of events, from
        ``last_event_id`` (replayed after it) or live (``None``). See :mod:`threadline_client.stream`."""
        policy = ReconnectPolicy(max_delay_seconds=max_delay_seconds, rng=rng or random.Random())
        return EventStream(
            self.session,
            ident(conversation_id),
            last_event_id,
            policy=policy,
            read_timeout=read_timeout,
            on_status=on_status,
        )
