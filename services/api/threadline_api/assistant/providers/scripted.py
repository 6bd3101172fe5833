"""The ``scripted`` provider (contract 9.4): deterministic output for tests.

It waits ``delay_ms`` before each delta, yields ``deltas`` in order and ends with ``finish_reason`` and
``usage`` (if given). ``error_after = k`` fails with ``scripted error`` after k deltas; ``stall_after = k``
yields k deltas, then waits until the generation is cancelled or times out. Defaults come from the
``THREADLINE_SCRIPTED_*`` settings; a triggering message whose content is a JSON object with an object under
``"scripted"`` overrides them for its job, e.g. ``{"scripted":{"deltas":["a","b"],"delay_ms":1000}}``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from threadline_api.assistant.providers.base import (
    Delta,
    Finished,
    GenerationRequest,
    ProviderError,
    ProviderFinishReason,
    ProviderItem,
    ProviderUsage,
)

SCRIPTED_ERROR = "scripted error"


@dataclass(frozen=True, slots=True)
class Script:
    deltas: tuple[str, ...] = ("Hello", " world")
    delay_ms: int = 0
    finish_reason: ProviderFinishReason = "stop"
    error_after: int | None = None
    stall_after: int | None = None
    usage: ProviderUsage | None = None


class _UsageOverride(BaseModel):
    model_config = ConfigDict(extra="ignore")

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class _ScriptOverride(BaseModel):
    """The keys of a per-message script; absent keys keep the configured value."""

    model_config = ConfigDict(extra="ignore")

    deltas: list[str] | None = None
    delay_ms: int | None = Field(default=None, ge=0)
    finish_reason: ProviderFinishReason | None = None
    error_after: int | None = Field(default=None, ge=0)
    stall_after: int | None = Field(default=None, ge=0)
    usage: _UsageOverride | None = None


def message_script(content: str | None) -> dict[str, Any] | None:
    """The ``"scripted"`` object of a triggering message's JSON content, if it has one."""
    if content is None or not content.lstrip().startswith("{"):
        return None
    try:
        document = json.loads(content)
    except ValueError:
        return None
    script = document.get("scripted") if isinstance(document, dict) else None
    return script if isinstance(script, dict) else None


def apply_override(script: Script, raw: dict[str, Any]) -> Script:
    """``script`` with the keys present in ``raw`` replaced; raises ProviderError on a malformed value."""
    try:
        override = _ScriptOverride.model_validate(raw)
    except ValidationError as exc:
        fields = ", ".join(sorted({str(error["loc"][0]) for error in exc.errors() if error["loc"]}))
        raise ProviderError(f"invalid scripted override: {fields or 'script'}") from None
    changes: dict[str, Any] = {}
    for key in override.model_fields_set:
        value = getattr(override, key)
        if key == "deltas":
            value = tuple(value) if value is not None else script.deltas
        elif key == "usage" and value is not None:
            value = ProviderUsage(**value.model_dump())
        elif value is None and key in ("delay_ms", "finish_reason"):
            continue
        changes[key] = value
    return replace(script, **changes)


class ScriptedProvider:
    name = "scripted"

    def __init__(self, script: Script) -> None:
        self.script = script

    def script_for(self, request: GenerationRequest) -> Script:
        raw = message_script(request.trigger_content)
        return self.script if raw is None else apply_override(self.script, raw)

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[ProviderItem, None]:
        script = self.script_for(request)
        for index, text in enumerate(script.deltas):
            await _stop_point(script, index)
            if script.delay_ms:
                await asyncio.sleep(script.delay_ms / 1000)
            else:
                await asyncio.sleep(0)  # a scripted burst still lets other jobs run
            yield Delta(text)
        await _stop_point(script, len(script.deltas))
        yield Finished(script.finish_reason, script.usage)


async def _stop_point(script: Script, produced: int) -> None:
    """Fail or stall once ``produced`` deltas are out, as the script says (an index past the end applies at
    the end)."""
    last = len(script.deltas)
    if script.error_after is not None and min(script.error_after, last) == produced:
        if script.stall_after is None or script.error_after <= script.stall_after:
            raise ProviderError(SCRIPTED_ERROR)
    if script.stall_after is not None and min(script.stall_after, last) == produced:
        await asyncio.Event().wait()  # until the generation is cancelled or times out (9.4)
