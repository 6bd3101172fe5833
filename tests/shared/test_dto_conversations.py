"""Conversation and invite request DTOs (contract 4.1, 4.4) and the title limit of 1.5."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from threadline_shared.dto import (
    AcceptInviteRequest,
    AddParticipantRequest,
    ConversationCreateRequest,
    ConversationRole,
    CreateInviteRequest,
)

BOB = "5b6c7d8e-9f00-4a1b-8c2d-3e4f5a6b7c8d"
INVITE = {"email": "carol@example.com"}


def _rejected_fields(model: type[Any], body: dict[str, Any]) -> set[str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    return {str(error["loc"][0]) for error in caught.value.errors()}


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("Weekly sync", "Weekly sync"),
        ("  Weekly \t sync\n notes  ", "Weekly sync notes"),
        ("a\u3000\u00a0b", "a b"),
        ("x", "x"),
        ("t" * 256, "t" * 256),
        (f"   {'t' * 256}   ", "t" * 256),
        ("a" + " " * 300 + "b", "a b"),
    ],
    ids=["plain", "runs", "unicode-spaces", "one-char", "256", "256-padded", "long-run"],
)
def test_title_is_trimmed_and_whitespace_runs_collapsed(given: str, stored: str) -> None:
    assert ConversationCreateRequest.model_validate({"title": given}).title == stored


@pytest.mark.parametrize("title", ["", "   ", "\n\t", "t" * 257, "t " * 128 + "t"], ids=str.__len__)
def test_title_blank_or_over_256_characters_after_normalising_is_rejected(title: str) -> None:
    assert _rejected_fields(ConversationCreateRequest, {"title": title}) == {"title"}


@pytest.mark.parametrize(
    ("body", "assistant_replies"),
    [
        ({}, True),
        ({"is_group": False}, True),
        ({"is_group": True}, False),
        ({"is_group": True, "assistant_replies": True}, True),
        ({"is_group": False, "assistant_replies": False}, False),
        ({"is_group": True, "assistant_replies": None}, False),
        ({"is_group": None, "assistant_replies": None}, True),
    ],
)
def test_assistant_replies_defaults_to_not_is_group(body: dict[str, Any], assistant_replies: bool) -> None:
    request = ConversationCreateRequest.model_validate({"title": "t", **body})
    assert request.assistant_replies is assistant_replies


def test_invalid_is_group_is_the_only_error_reported() -> None:
    assert _rejected_fields(ConversationCreateRequest, {"title": "t", "is_group": "yes"}) == {"is_group"}


@pytest.mark.parametrize("role", list(ConversationRole))
def test_participant_may_be_given_any_conversation_role(role: ConversationRole) -> None:
    assert AddParticipantRequest.model_validate({"user_id": BOB, "role": role.value}).role is role


@pytest.mark.parametrize("role", ["OWNER", "superuser", "", "read_only"])
def test_participant_role_outside_the_enumeration_is_rejected(role: str) -> None:
    assert _rejected_fields(AddParticipantRequest, {"user_id": BOB, "role": role}) == {"role"}


@pytest.mark.parametrize("ttl_seconds", [1, 60, 86_400, 2_592_000])
def test_invite_ttl_within_30_days_is_accepted(ttl_seconds: int) -> None:
    assert (
        CreateInviteRequest.model_validate({**INVITE, "ttl_seconds": ttl_seconds}).ttl_seconds == ttl_seconds
    )


@pytest.mark.parametrize("ttl_seconds", [0, -1, 2_592_001, 10**12])
def test_invite_ttl_outside_1_to_2592000_is_rejected(ttl_seconds: int) -> None:
    assert _rejected_fields(CreateInviteRequest, {**INVITE, "ttl_seconds": ttl_seconds}) == {"ttl_seconds"}


@pytest.mark.parametrize("email", ["carol", "@example.com", "carol@", "a@b@c"])
def test_invite_email_follows_the_email_rule(email: str) -> None:
    assert _rejected_fields(CreateInviteRequest, {"email": email}) == {"email"}


def test_invite_for_an_owner_is_valid_at_the_dto_level() -> None:
    assert CreateInviteRequest.model_validate({**INVITE, "role": "owner"}).role is ConversationRole.OWNER


def test_accepting_an_empty_token_is_left_to_the_lookup() -> None:
    assert AcceptInviteRequest.model_validate({"token": ""}).token == ""
