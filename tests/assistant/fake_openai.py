"""A small OpenAI-compatible chat completions server for tests, served over a real loopback socket.

``POST /v1/chat/completions`` streams ``data:`` lines as the current :class:`Behaviour` says: chunks then
``[DONE]``, an error status, a stream that breaks off, or one that stalls. Every request is recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

Mode = Literal["ok", "status", "no_done", "break", "stall", "garbage"]


@dataclass
class Behaviour:
    mode: Mode = "ok"
    deltas: list[str] = field(default_factory=lambda: ["Hel", "lo", " there"])
    finish_reason: str | None = "stop"
    usage: dict[str, int] | None = None
    status: int = 500
    delay_seconds: float = 0.0


@dataclass
class RecordedRequest:
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeOpenAI:
    behaviour: Behaviour = field(default_factory=Behaviour)
    requests: list[RecordedRequest] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self._completions, methods=["POST"])])

    async def _completions(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        self.requests.append(RecordedRequest(dict(request.headers), body))
        behaviour = self.behaviour
        if behaviour.mode == "status":
            # Echo the key back the way some servers do; it must never reach an error text.
            problem = {"error": {"message": f"bad key {request.headers.get('authorization')}"}}
            return JSONResponse(problem, status_code=behaviour.status)
        return StreamingResponse(self._events(behaviour), media_type="text/event-stream")

    async def _events(self, behaviour: Behaviour) -> AsyncIterator[bytes]:
        for index, text in enumerate(behaviour.deltas):
            if behaviour.delay_seconds:
                await asyncio.sleep(behaviour.delay_seconds)
            delta: dict[str, Any] = {"content": text}
            if index == 0:
                delta["role"] = "assistant"
            yield _data({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]})
            if behaviour.mode == "break" and index == 0:
                raise ConnectionAbortedError("the server broke off the stream")
        if behaviour.mode == "garbage":
            yield b"data: {not json\n\n"
        if behaviour.mode == "stall":
            async with asyncio.timeout(30):
                await self.release.wait()
            return
        yield _data({"choices": [{"index": 0, "delta": {}, "finish_reason": behaviour.finish_reason}]})
        if behaviour.usage is not None:
            yield _data({"choices": [], "usage": behaviour.usage})
        if behaviour.mode != "no_done":
            yield b"data: [DONE]\n\n"


def _data(chunk: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\n\n"
