"""How an assistant reply ends (contract 9.6): the outcome table, as pure functions.

| Outcome           | finish_reason      | status    | final content              | error event            |
|-------------------|--------------------|-----------|----------------------------|------------------------|
| provider finished | provider's or stop | complete  | text, or an apology        | none                   |
| cancelled         | cancelled          | cancelled | text, or "... cancelled."  | none                   |
| timed out         | timeout            | failed    | text + timeout suffix      | assistant_timeout      |
| error, lost       | error              | failed    | text + stream error suffix | assistant_stream_error |

``text`` is everything streamed (all chunks). The ``\\n\\n`` before a suffix is left out when ``text`` is
empty; fallbacks and suffixes never become chunks or deltas. Usage counts the provider reports (when > 0)
win; otherwise words of the prompt (9.3) and of ``text``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from threadline_api.assistant.prompt import word_count
from threadline_api.assistant.providers.base import ProviderFinishReason, ProviderUsage
from threadline_shared.dto.enums import FinishReason, MessageStatus
from threadline_shared.dto.events import StreamErrorCode, Usage

EMPTY_REPLY = "I'm sorry, I couldn't generate a response right now."
CANCELLED_REPLY = "Assistant response cancelled."
TIMEOUT_MESSAGE = "Assistant generation timed out before completion."
WORKER_LOST = "worker lost"
WORKER_STOPPED = "worker stopped"
WARNING = "⚠️ "


class OutcomeKind(StrEnum):
    FINISHED = "finished"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Outcome:
    """Why generation stopped: the provider finished (with its reason and usage), the reply was cancelled,
    it timed out, or it failed with ``error`` as ``<err>``."""

    kind: OutcomeKind
    finish_reason: ProviderFinishReason = "stop"
    usage: ProviderUsage | None = None
    error: str | None = None

    @classmethod
    def finished(
        cls, finish_reason: ProviderFinishReason = "stop", usage: ProviderUsage | None = None
    ) -> Outcome:
        return cls(OutcomeKind.FINISHED, finish_reason, usage)

    @classmethod
    def cancelled(cls) -> Outcome:
        return cls(OutcomeKind.CANCELLED)

    @classmethod
    def timed_out(cls) -> Outcome:
        return cls(OutcomeKind.TIMED_OUT)

    @classmethod
    def failed(cls, error: str) -> Outcome:
        return cls(OutcomeKind.FAILED, error=error)


@dataclass(frozen=True, slots=True)
class StreamFailure:
    code: StreamErrorCode
    message: str


@dataclass(frozen=True, slots=True)
class Final:
    """The message's final content, status and finish reason, the ``error`` event (if any) and the usage of
    ``message.done``."""

    content: str
    status: MessageStatus
    finish_reason: FinishReason
    failure: StreamFailure | None
    usage: Usage


def _suffixed(text: str, suffix: str) -> str:
    return f"{text}\n\n{suffix}" if text else suffix


def usage_for(provider: ProviderUsage | None, *, prompt_words: int, text: str) -> Usage:
    reported = provider or ProviderUsage()
    prompt = reported.prompt_tokens if reported.prompt_tokens > 0 else prompt_words
    completion = reported.completion_tokens if reported.completion_tokens > 0 else word_count(text)
    total = reported.total_tokens if reported.total_tokens > 0 else prompt + completion
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total)


def final_state(outcome: Outcome, text: str, *, prompt_words: int) -> Final:
    usage = usage_for(outcome.usage, prompt_words=prompt_words, text=text)
    match outcome.kind:
        case OutcomeKind.FINISHED:
            reason = FinishReason(outcome.finish_reason)
            return Final(text or EMPTY_REPLY, MessageStatus.COMPLETE, reason, None, usage)
        case OutcomeKind.CANCELLED:
            return Final(
                text or CANCELLED_REPLY, MessageStatus.CANCELLED, FinishReason.CANCELLED, None, usage
            )
        case OutcomeKind.TIMED_OUT:
            failure = StreamFailure(StreamErrorCode.ASSISTANT_TIMEOUT, TIMEOUT_MESSAGE)
            content = _suffixed(text, WARNING + TIMEOUT_MESSAGE)
            return Final(content, MessageStatus.FAILED, FinishReason.TIMEOUT, failure, usage)
        case OutcomeKind.FAILED:
            message = f"Assistant stream error: {outcome.error}"
            failure = StreamFailure(StreamErrorCode.ASSISTANT_STREAM_ERROR, message)
            content = _suffixed(text, WARNING + message)
            return Final(content, MessageStatus.FAILED, FinishReason.ERROR, failure, usage)
    raise AssertionError(outcome.kind)
