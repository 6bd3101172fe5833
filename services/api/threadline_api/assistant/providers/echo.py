"""The ``echo`` provider (contract 9.4), the default outside tests: it answers with the triggering message's
content, split into tokens matching ``\\s*\\S+\\s*`` and sent ``THREADLINE_ECHO_DELAY_MS`` apart, so a local
run streams a readable reply without any model. Finish ``stop``, no usage."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator

from threadline_api.assistant.providers.base import Delta, Finished, GenerationRequest, ProviderItem

TOKEN = re.compile(r"\s*\S+\s*")


def echo_tokens(content: str) -> list[str]:
    return TOKEN.findall(content)


class EchoProvider:
    name = "echo"

    def __init__(self, delay_ms: int) -> None:
        self.delay_seconds = delay_ms / 1000

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[ProviderItem, None]:
        for token in echo_tokens(request.trigger_content or ""):
            await asyncio.sleep(self.delay_seconds)
            yield Delta(token)
        yield Finished("stop")
