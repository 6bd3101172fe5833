"""Heartbeat and typing request DTOs (contract 7.1, 7.3)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from threadline_shared.dto import HeartbeatRequest, PresenceStatus, TypingRequest

CONVERSATION = "7d9f1c2e-4b3a-4f6e-9a1b-2c3d4e5f6a7b"


@pytest.mark.parametrize("status", [PresenceStatus.ONLINE, PresenceStatus.AWAY])
def test_heartbeat_accepts_online_and_away(status: PresenceStatus) -> None:
    assert HeartbeatRequest.model_validate({"status": status.value}).status is status


@pytest.mark.parametrize("status", ["offline", "busy", "ONLINE", "Away", ""])
def test_heartbeat_rejects_any_other_status(status: str) -> None:
    with pytest.raises(ValidationError):
        HeartbeatRequest.model_validate({"status": status})


@pytest.mark.parametrize("seconds", [-5, 0, 1, 30, 31, 10**6])
def test_typing_seconds_is_any_integer_left_for_the_service_to_clamp(seconds: int) -> None:
    assert (
        TypingRequest.model_validate({"conversation_id": CONVERSATION, "seconds": seconds}).seconds == seconds
    )


def test_typing_without_root_means_a_new_root() -> None:
    assert TypingRequest.model_validate({"conversation_id": CONVERSATION, "seconds": 3}).root_id is None
