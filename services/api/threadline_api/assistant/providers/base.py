"""The provider interface (contract 9.4): a provider yields text deltas and ends with a finish reason and
optional usage, or fails with an error text.

A provider's :meth:`Provider.stream` is an async iterator of :class:`Delta` items, optionally ended by one
:class:`Finished` (an iterator that just ends means ``stop`` without usage). Failure is
:class:`ProviderError`, whose text becomes ``<err>`` of the contract's error suffix and ``error`` event, so it
is short and never holds a secret. Stopping a generation (cancel, timeout) cancels the task iterating, which
the provider must tolerate at any ``await``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Literal, Protocol

from threadline_api.assistant.prompt import Prompt

ProviderFinishReason = Literal["stop", "length", "stop_sequence"]


@dataclass(frozen=True, slots=True)
class Delta:
    text: str


@dataclass(frozen=True, slots=True)
class ProviderUsage:
    """Token counts as the provider reports them; a count that is not > 0 is replaced by a word count."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Finished:
    finish_reason: ProviderFinishReason = "stop"
    usage: ProviderUsage | None = None


class ProviderError(Exception):
    """The provider failed; ``text`` is the contract's ``<err>``."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """Everything a provider may use: the prompt of 9.3, the parameters of 9.3 step 6, and the triggering
    message's content (``None`` when it was deleted before the job started)."""

    prompt: Prompt
    trigger_content: str | None
    max_tokens: int
    temperature: float | None = None
    stop: tuple[str, ...] | None = None


ProviderItem = Delta | Finished


class Provider(Protocol):
    name: str

    def stream(self, request: GenerationRequest) -> AsyncGenerator[ProviderItem, None]: ...
