"""The providers of contract 9.4: scripted (configured and per-message scripts), echo, and openai against a
local OpenAI-compatible server over real HTTP streaming (success, usage, non-2xx, broken stream, timeout)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.assistant.fake_openai import Behaviour, FakeOpenAI
from tests.support.http import serve_app
from threadline_api.assistant.prompt import ChainMessage, build_prompt
from threadline_api.assistant.providers import open_provider, scripted_from_settings
from threadline_api.assistant.providers.base import (
    Delta,
    Finished,
    GenerationRequest,
    Provider,
    ProviderError,
    ProviderItem,
    ProviderUsage,
)
from threadline_api.assistant.providers.echo import EchoProvider, echo_tokens
from threadline_api.assistant.providers.openai import OpenAIProvider
from threadline_api.assistant.providers.scripted import Script, ScriptedProvider
from threadline_shared.settings import Settings

KEY = "sk-test-0123456789abcdef"


def request_for(content: str | None, **fields: object) -> GenerationRequest:
    chain = [ChainMessage("system", "Be brief."), ChainMessage("user", content or "hi")]
    return GenerationRequest(prompt=build_prompt(chain), trigger_content=content, max_tokens=64, **fields)  # type: ignore[arg-type]


async def collect(provider: Provider, request: GenerationRequest) -> list[ProviderItem]:
    async with asyncio.timeout(5):
        return [item async for item in provider.stream(request)]


def texts(items: list[ProviderItem]) -> list[str]:
    return [item.text for item in items if isinstance(item, Delta)]


# ---- scripted ---------------------------------------------------------------------------------------------


async def test_scripted_yields_the_configured_deltas_then_its_finish_reason() -> None:
    provider = scripted_from_settings(Settings.load(env="test", scripted_finish_reason="length"))
    items = await collect(provider, request_for("hello"))
    assert texts(items) == ["Hello", " world"]
    assert items[-1] == Finished("length", None)


async def test_a_per_message_script_overrides_the_configured_one() -> None:
    provider = ScriptedProvider(Script(deltas=("x",)))
    content = (
        '{"scripted":{"deltas":["a","b","c"],"finish_reason":"stop_sequence","usage":{"prompt_tokens":7}}}'
    )
    items = await collect(provider, request_for(content))
    assert texts(items) == ["a", "b", "c"]
    assert items[-1] == Finished("stop_sequence", ProviderUsage(prompt_tokens=7))


async def test_content_that_is_not_a_script_keeps_the_configured_script() -> None:
    provider = ScriptedProvider(Script(deltas=("x",)))
    for content in ('{"other": 1}', '["scripted"]', '{"scripted": 3}', "{broken", "plain text"):
        assert texts(await collect(provider, request_for(content))) == ["x"]


async def test_a_malformed_per_message_script_is_a_provider_error() -> None:
    provider = ScriptedProvider(Script())
    with pytest.raises(ProviderError, match="invalid scripted override: delay_ms"):
        await collect(provider, request_for('{"scripted":{"delay_ms":-5}}'))


async def test_scripted_error_after_fails_after_that_many_deltas() -> None:
    provider = ScriptedProvider(Script(deltas=("a", "b", "c"), error_after=2))
    seen: list[ProviderItem] = []
    with pytest.raises(ProviderError) as failure:
        async for item in provider.stream(request_for("go")):
            seen.append(item)
    assert failure.value.text == "scripted error"
    assert texts(seen) == ["a", "b"]


async def test_scripted_stall_after_waits_until_it_is_cancelled() -> None:
    provider = ScriptedProvider(Script(deltas=("a", "b", "c"), stall_after=1))
    seen: list[ProviderItem] = []

    async def consume() -> None:
        async for item in provider.stream(request_for("go")):
            seen.append(item)

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await consume()
    assert texts(seen) == ["a"]


async def test_scripted_waits_delay_ms_before_each_delta() -> None:
    provider = ScriptedProvider(Script(deltas=("a", "b", "c"), delay_ms=40))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await collect(provider, request_for("go"))
    assert loop.time() - started >= 0.12


# ---- echo -------------------------------------------------------------------------------------------------


def test_echo_tokens_keep_every_character_of_the_content() -> None:
    content = "  Hello,   threaded\nworld!  "
    tokens = echo_tokens(content)
    assert tokens == ["  Hello,   ", "threaded\n", "world!  "]
    assert "".join(tokens) == content
    assert echo_tokens(" \n ") == []


async def test_echo_answers_with_the_triggering_message() -> None:
    items = await collect(EchoProvider(delay_ms=1), request_for("what is a thread?"))
    assert texts(items) == ["what ", "is ", "a ", "thread?"]
    assert items[-1] == Finished("stop", None)


async def test_echo_of_a_deleted_trigger_yields_nothing() -> None:
    items = await collect(EchoProvider(delay_ms=0), request_for(None))
    assert items == [Finished("stop", None)]


# ---- openai -----------------------------------------------------------------------------------------------


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[FakeOpenAI, str]]:
    server = FakeOpenAI()
    async with serve_app(server.app()) as url:
        try:
            yield server, url + "/v1"
        finally:
            server.release.set()


def openai(client: httpx.AsyncClient, base_url: str, key: str = KEY) -> OpenAIProvider:
    return OpenAIProvider(client, base_url=base_url, api_key=key, model="test-model")


async def test_openai_streams_deltas_finish_and_usage(upstream: tuple[FakeOpenAI, str]) -> None:
    server, base_url = upstream
    server.behaviour = Behaviour(finish_reason="length", usage={"prompt_tokens": 5, "completion_tokens": 3})
    async with httpx.AsyncClient(timeout=5) as client:
        items = await collect(openai(client, base_url), request_for("hello", temperature=0.5, stop=("END",)))
    assert texts(items) == ["Hel", "lo", " there"]
    assert items[-1] == Finished("length", ProviderUsage(prompt_tokens=5, completion_tokens=3))
    (sent,) = server.requests
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.body == {
        "model": "test-model",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 64,
        "temperature": 0.5,
        "stop": ["END"],
    }


async def test_openai_maps_other_finish_reasons_to_stop_and_omits_unset_parameters(
    upstream: tuple[FakeOpenAI, str],
) -> None:
    server, base_url = upstream
    server.behaviour = Behaviour(finish_reason="content_filter")
    async with httpx.AsyncClient(timeout=5) as client:
        items = await collect(openai(client, base_url, key=""), request_for("hello"))
    assert items[-1] == Finished("stop", None)
    (sent,) = server.requests
    assert "authorization" not in sent.headers
    assert "temperature" not in sent.body and "stop" not in sent.body


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        (Behaviour(mode="status", status=401), "provider answered HTTP 401 Unauthorized"),
        (Behaviour(mode="status", status=503), "provider answered HTTP 503 Service Unavailable"),
        (Behaviour(mode="break"), "provider stream broken"),
        (Behaviour(mode="no_done"), "provider stream ended before [DONE]"),
        (Behaviour(mode="garbage"), "provider sent malformed stream data"),
    ],
)
async def test_openai_failures_are_provider_errors_without_the_key(
    upstream: tuple[FakeOpenAI, str], behaviour: Behaviour, error: str
) -> None:
    server, base_url = upstream
    server.behaviour = behaviour
    async with httpx.AsyncClient(timeout=5) as client:
        with pytest.raises(ProviderError) as failure:
            await collect(openai(client, base_url), request_for("hello"))
    assert failure.value.text == error
    assert KEY not in failure.value.text and KEY not in str(failure.value)
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"


async def test_openai_times_out_on_a_stalled_stream(upstream: tuple[FakeOpenAI, str]) -> None:
    server, base_url = upstream
    server.behaviour = Behaviour(mode="stall")
    seen: list[ProviderItem] = []
    async with httpx.AsyncClient(timeout=httpx.Timeout(5, read=0.3)) as client:
        with pytest.raises(ProviderError) as failure:
            async for item in openai(client, base_url).stream(request_for("hello")):
                seen.append(item)
    assert failure.value.text == "provider timed out"
    assert texts(seen) == ["Hel", "lo", " there"]


async def test_openai_that_cannot_connect_is_a_provider_error() -> None:
    async with httpx.AsyncClient(timeout=2) as client:
        with pytest.raises(ProviderError, match=r"^cannot connect to the provider$"):
            await collect(openai(client, "http://127.0.0.1:9/v1"), request_for("hello"))
        with pytest.raises(ProviderError, match=r"^invalid provider URL$"):
            await collect(openai(client, "ftp://example.invalid/v1"), request_for("hello"))


async def test_open_provider_builds_the_configured_provider(upstream: tuple[FakeOpenAI, str]) -> None:
    _, base_url = upstream
    settings = Settings.load(env="test", assistant_provider="openai", openai_base_url=base_url)
    async with open_provider(settings) as provider:
        assert texts(await collect(provider, request_for("hello"))) == ["Hel", "lo", " there"]
    async with open_provider(Settings.load(env="dev")) as provider:
        assert provider.name == "echo"
    async with open_provider(Settings.load(env="test")) as provider:
        assert provider.name == "scripted"
