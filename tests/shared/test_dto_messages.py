"""Message request DTOs (contract 5.1) and the content and reason limits of 1.5."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from threadline_shared.dto import (
    MarkThreadReadRequest,
    MessageDeleteRequest,
    MessageEditRequest,
    MessageRole,
    PostRootMessageRequest,
    ReplyMessageRequest,
)

ROOT = "0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80"
CONTENT_MODELS = [PostRootMessageRequest, ReplyMessageRequest, MessageEditRequest]


def _rejected_fields(model: type[Any], body: dict[str, Any]) -> set[str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    return {str(error["loc"][0]) for error in caught.value.errors()}


@pytest.mark.parametrize("model", CONTENT_MODELS)
@pytest.mark.parametrize(
    "content",
    ["x", "  hi  ", "\n\tindented\n", "c" * 32_000, "😀" * 32_000, "é" * 32_000],
    ids=["one-char", "padded", "newlines", "32000-ascii", "32000-emoji", "32000-accented"],
)
def test_content_is_accepted_and_stored_as_sent(model: type[Any], content: str) -> None:
    assert model.model_validate({"content": content}).content == content


@pytest.mark.parametrize("model", CONTENT_MODELS)
@pytest.mark.parametrize(
    "content",
    ["", " ", "\n\t \r", "\u3000\u00a0", "c" * 32_001, "😀" * 32_001],
    ids=["empty", "space", "ascii-whitespace", "unicode-whitespace", "32001-ascii", "32001-emoji"],
)
def test_content_empty_blank_or_over_32000_code_points_is_rejected(model: type[Any], content: str) -> None:
    assert _rejected_fields(model, {"content": content}) == {"content"}


@pytest.mark.parametrize("role", list(MessageRole))
def test_any_message_role_may_be_posted(role: MessageRole) -> None:
    assert PostRootMessageRequest.model_validate({"content": "hi", "role": role.value}).role is role


@pytest.mark.parametrize("role", ["bot", "User", ""])
def test_unknown_message_role_is_rejected(role: str) -> None:
    assert _rejected_fields(ReplyMessageRequest, {"content": "hi", "role": role}) == {"role"}


@pytest.mark.parametrize("model", [MessageEditRequest, MessageDeleteRequest])
@pytest.mark.parametrize("reason", ["", "spam", "r" * 512])
def test_reason_of_at_most_512_characters_is_accepted(model: type[Any], reason: str) -> None:
    assert model.model_validate({"content": "hi", "reason": reason}).reason == reason


@pytest.mark.parametrize("model", [MessageEditRequest, MessageDeleteRequest])
def test_reason_over_512_characters_is_rejected(model: type[Any]) -> None:
    assert _rejected_fields(model, {"content": "hi", "reason": "r" * 513}) == {"reason"}


def test_mark_read_accepts_an_uppercase_message_id() -> None:
    assert str(MarkThreadReadRequest.model_validate({"message_id": ROOT.upper()}).message_id) == ROOT
