"""The enumerations of contract 1.4, value for value."""

from __future__ import annotations

from enum import StrEnum

import pytest

from threadline_shared.dto import (
    CancelStatus,
    ConversationRole,
    FinishReason,
    GlobalRole,
    InviteStatus,
    MembershipAction,
    MessageRole,
    MessageStatus,
    PresenceStatus,
)

CONTRACT_ENUMERATIONS: list[tuple[type[StrEnum], list[str]]] = [
    (GlobalRole, ["admin", "member", "read_only"]),
    (ConversationRole, ["owner", "admin", "member", "viewer"]),
    (MessageRole, ["user", "assistant", "system", "tool"]),
    (MessageStatus, ["complete", "streaming", "cancelled", "failed"]),
    (PresenceStatus, ["online", "away", "offline"]),
    (MembershipAction, ["added", "removed", "role_updated"]),
    (FinishReason, ["stop", "length", "stop_sequence", "cancelled", "timeout", "error"]),
    (CancelStatus, ["cancelled", "timed_out", "completed", "not_tracked"]),
    (InviteStatus, ["active", "accepted", "revoked", "expired"]),
]


@pytest.mark.parametrize(
    ("enum", "values"), CONTRACT_ENUMERATIONS, ids=[e.__name__ for e, _ in CONTRACT_ENUMERATIONS]
)
def test_enumeration_has_exactly_the_contract_values(enum: type[StrEnum], values: list[str]) -> None:
    assert [member.value for member in enum] == values


@pytest.mark.parametrize(
    ("enum", "values"), CONTRACT_ENUMERATIONS, ids=[e.__name__ for e, _ in CONTRACT_ENUMERATIONS]
)
def test_enumeration_member_is_its_wire_string(enum: type[StrEnum], values: list[str]) -> None:
    assert [str(member) for member in enum] == values
