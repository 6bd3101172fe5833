"""The outcome table of contract 9.6: final content, status, finish reason, error event and usage."""

from __future__ import annotations

from threadline_api.assistant.finish import Outcome, final_state, usage_for
from threadline_api.assistant.providers.base import ProviderUsage
from threadline_shared.dto.enums import FinishReason, MessageStatus
from threadline_shared.dto.events import StreamErrorCode, Usage


def test_a_finished_reply_keeps_the_text_and_the_providers_reason() -> None:
    final = final_state(Outcome.finished("length"), "Hello world", prompt_words=4)
    assert (final.content, final.status, final.finish_reason) == (
        "Hello world",
        MessageStatus.COMPLETE,
        FinishReason.LENGTH,
    )
    assert final.failure is None
    assert final.usage == Usage(prompt_tokens=4, completion_tokens=2, total_tokens=6)


def test_an_empty_finished_reply_gets_the_apology() -> None:
    final = final_state(Outcome.finished(), "", prompt_words=1)
    assert final.content == "I'm sorry, I couldn't generate a response right now."
    assert final.finish_reason is FinishReason.STOP
    assert final.usage.completion_tokens == 0


def test_a_cancelled_reply_keeps_its_text_or_says_so() -> None:
    partial = final_state(Outcome.cancelled(), "Hel", prompt_words=1)
    assert (partial.content, partial.status, partial.finish_reason) == (
        "Hel",
        MessageStatus.CANCELLED,
        FinishReason.CANCELLED,
    )
    assert partial.failure is None
    assert final_state(Outcome.cancelled(), "", prompt_words=1).content == "Assistant response cancelled."


def test_a_timed_out_reply_gets_the_timeout_suffix_and_error() -> None:
    final = final_state(Outcome.timed_out(), "Half an answer", prompt_words=1)
    assert final.content == "Half an answer\n\n⚠️ Assistant generation timed out before completion."
    assert (final.status, final.finish_reason) == (MessageStatus.FAILED, FinishReason.TIMEOUT)
    assert final.failure is not None
    assert final.failure.code is StreamErrorCode.ASSISTANT_TIMEOUT
    assert final.failure.message == "Assistant generation timed out before completion."
    assert final.usage.completion_tokens == 3, "the suffix is not counted"


def test_a_failed_reply_gets_the_stream_error_suffix_and_error() -> None:
    final = final_state(Outcome.failed("worker lost"), "Some", prompt_words=1)
    assert final.content == "Some\n\n⚠️ Assistant stream error: worker lost"
    assert (final.status, final.finish_reason) == (MessageStatus.FAILED, FinishReason.ERROR)
    assert final.failure is not None
    assert final.failure.code is StreamErrorCode.ASSISTANT_STREAM_ERROR
    assert final.failure.message == "Assistant stream error: worker lost"


def test_without_text_the_suffix_stands_alone() -> None:
    assert final_state(Outcome.failed("scripted error"), "", prompt_words=1).content == (
        "⚠️ Assistant stream error: scripted error"
    )
    assert final_state(Outcome.timed_out(), "", prompt_words=1).content == (
        "⚠️ Assistant generation timed out before completion."
    )


def test_provider_usage_wins_when_positive_else_word_counts() -> None:
    reported = ProviderUsage(prompt_tokens=10, completion_tokens=0, total_tokens=0)
    assert usage_for(reported, prompt_words=3, text="one two") == Usage(
        prompt_tokens=10, completion_tokens=2, total_tokens=12
    )
    full = ProviderUsage(prompt_tokens=10, completion_tokens=5, total_tokens=99)
    assert usage_for(full, prompt_words=3, text="x") == Usage(
        prompt_tokens=10, completion_tokens=5, total_tokens=99
    )
    assert usage_for(None, prompt_words=3, text=" a  b\nc ") == Usage(
        prompt_tokens=3, completion_tokens=3, total_tokens=6
    )
