"""Assistant providers behind one small interface (:mod:`.base`): ``scripted``, ``echo`` and ``openai``
(contract 9.4). :func:`open_provider` builds the configured one and owns its resources."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from threadline_api.assistant.providers.base import Provider
from threadline_api.assistant.providers.echo import EchoProvider
from threadline_api.assistant.providers.openai import OpenAIProvider, client_timeout
from threadline_api.assistant.providers.scripted import Script, ScriptedProvider
from threadline_shared.settings import Settings


def scripted_from_settings(settings: Settings) -> ScriptedProvider:
    return ScriptedProvider(
        Script(
            deltas=tuple(settings.scripted_deltas),
            delay_ms=settings.scripted_delay_ms,
            finish_reason=settings.scripted_finish_reason,
            error_after=settings.scripted_error_after,
            stall_after=settings.scripted_stall_after,
        )
    )


@asynccontextmanager
async def open_provider(settings: Settings) -> AsyncIterator[Provider]:
    """The provider ``THREADLINE_ASSISTANT_PROVIDER`` names, open for the life of the worker."""
    if settings.assistant_provider == "openai":
        async with httpx.AsyncClient(timeout=client_timeout(settings.assistant_timeout_seconds)) as client:
            yield OpenAIProvider(
                client,
                base_url=settings.openai_base_url,
                api_key=settings.openai_api_key,
                model=settings.openai_model,
            )
    elif settings.assistant_provider == "scripted":
        yield scripted_from_settings(settings)
    else:
        yield EchoProvider(settings.echo_delay_ms)
