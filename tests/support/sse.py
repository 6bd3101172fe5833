"""A small SSE client over a real socket (httpx streaming), for end-to-end stream tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: dict[str, Any]
    id: int | None

    @property
    def payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = self.data["payload"]
        return payload


@dataclass
class SseStream:
    response: httpx.Response
    retry: int | None = None
    comments: list[str] = field(default_factory=list)
    _lines: AsyncIterator[str] | None = None

    async def next(self, timeout: float = 5.0) -> SseEvent:
        """The next event (comments and ``retry:`` are recorded, not returned)."""
        return await asyncio.wait_for(self._next(), timeout)

    async def _next(self) -> SseEvent:
        if self._lines is None:
            self._lines = self.response.aiter_lines()
        fields: dict[str, str] = {}
        async for line in self._lines:
            if line == "":
                if "data" in fields:
                    seq = fields.get("id")
                    return SseEvent(
                        fields.get("event", "message"),
                        orjson.loads(fields["data"]),
                        int(seq) if seq else None,
                    )
                fields = {}
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "retry":
                self.retry = int(value)
            else:
                fields[name] = value
        raise EOFError("the stream ended")

    async def durable(self, count: int, timeout: float = 10.0) -> list[SseEvent]:
        """The next ``count`` durable events (ephemeral ones are skipped)."""
        found: list[SseEvent] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while len(found) < count:
            remaining = deadline - asyncio.get_running_loop().time()
            event = await self.next(max(0.01, remaining))
            if event.id is not None:
                found.append(event)
        return found

    async def until(self, event_type: str, timeout: float = 10.0) -> SseEvent:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            event = await self.next(max(0.01, deadline - asyncio.get_running_loop().time()))
            if event.event == event_type:
                return event


@asynccontextmanager
async def open_stream(
    base_url: str,
    conversation_id: str,
    token: str | None,
    *,
    last_event_id: int | None = None,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> AsyncIterator[SseStream]:
    """A stream of ``conversation_id`` with ``token`` as bearer (None: no Authorization header)."""
    request_headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    request_headers.update(headers or {})
    if last_event_id is not None:
        request_headers["Last-Event-ID"] = str(last_event_id)
    timeout = httpx.Timeout(10.0, read=30.0)
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=timeout) as client,
        client.stream(
            "GET", f"/api/stream/conversations/{conversation_id}", headers=request_headers, params=params
        ) as response,
    ):
        yield SseStream(response)
