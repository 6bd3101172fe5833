"""The ``openai`` provider (contract 9.4): any OpenAI-compatible streaming chat completions endpoint.

``POST <base_url>/chat/completions`` with ``{model, messages, stream: true, stream_options: {include_usage:
true}, max_tokens, temperature?, stop?}`` and ``Authorization: Bearer <key>`` when a key is set; the answer's
``data:`` lines are read until ``[DONE]``. Finish ``length`` stays ``length``; anything else is ``stop``.

A non-2xx answer, a transport failure, a timeout, malformed data or a stream that ends before ``[DONE]`` is a
:class:`ProviderError` whose text names the status or the failure briefly. Error texts are built from fixed
phrases and the HTTP status only, never from the response body or the exception message, so the key never
appears in them.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from http import HTTPStatus
from typing import Any

import httpx
import orjson

from threadline_api.assistant.providers.base import (
    Delta,
    Finished,
    GenerationRequest,
    ProviderError,
    ProviderItem,
    ProviderUsage,
)

CONNECT_TIMEOUT_SECONDS = 10.0


def client_timeout(timeout_seconds: float) -> httpx.Timeout:
    """Connect within 10 s (or the generation timeout, if shorter); reads wait up to the generation
    timeout (none when it is 0: then only cancel stops a silent provider)."""
    total = timeout_seconds or None
    connect = min(CONNECT_TIMEOUT_SECONDS, total) if total else CONNECT_TIMEOUT_SECONDS
    return httpx.Timeout(connect=connect, read=total, write=connect, pool=connect)


def status_text(status_code: int) -> str:
    try:
        phrase = HTTPStatus(status_code).phrase
    except ValueError:
        phrase = "error"
    return f"provider answered HTTP {status_code} {phrase}"


def _transport_text(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "provider timed out"
    if isinstance(exc, httpx.ConnectError):
        return "cannot connect to the provider"
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return "invalid provider URL"
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
        return "provider stream broken"
    return f"provider request failed ({type(exc).__name__})"


class OpenAIProvider:
    name = "openai"

    def __init__(self, client: httpx.AsyncClient, *, base_url: str, api_key: str, model: str) -> None:
        self.client = client
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.api_key = api_key
        self.model = model

    def request_body(self, request: GenerationRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": request.prompt.chat_messages(),
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": request.max_tokens,
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.stop:
            body["stop"] = list(request.stop)
        return body

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[ProviderItem, None]:
        headers = {"Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        finish: Finished | None = None
        try:
            async with self.client.stream(
                "POST", self.url, content=orjson.dumps(self.request_body(request)), headers=headers
            ) as response:
                if not response.is_success:
                    raise ProviderError(status_text(response.status_code))
                reader = _ChunkReader()
                async for line in response.aiter_lines():
                    for text in reader.feed(line):
                        yield Delta(text)
                    if reader.done:
                        finish = reader.finished()
                        break
        except httpx.HTTPError as exc:
            raise ProviderError(_transport_text(exc)) from None
        if finish is None:
            raise ProviderError("provider stream ended before [DONE]")
        yield finish


class _ChunkReader:
    """Parses ``data:`` lines of a chat.completion.chunk stream, remembering finish reason and usage."""

    def __init__(self) -> None:
        self.done = False
        self.finish_reason: str | None = None
        self.usage: ProviderUsage | None = None

    def feed(self, line: str) -> list[str]:
        if not line.startswith("data:"):
            return []  # blank separators, comments, event:/id: fields
        data = line[5:].strip()
        if data == "[DONE]":
            self.done = True
            return []
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise ProviderError("provider sent malformed stream data") from None
        if not isinstance(chunk, dict):
            raise ProviderError("provider sent malformed stream data")
        if isinstance(chunk.get("error"), dict):
            raise ProviderError("provider reported an error mid-stream")
        texts: list[str] = []
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                texts.append(delta["content"])
            if isinstance(choice.get("finish_reason"), str):
                self.finish_reason = choice["finish_reason"]
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = ProviderUsage(
                prompt_tokens=_count(usage.get("prompt_tokens")),
                completion_tokens=_count(usage.get("completion_tokens")),
                total_tokens=_count(usage.get("total_tokens")),
            )
        return texts

    def finished(self) -> Finished:
        return Finished("length" if self.finish_reason == "length" else "stop", self.usage)


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
