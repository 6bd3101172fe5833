"""The snapshot's ``presence.update`` frames are encoded without the DTO (threadline_streamer.snapshot); they
must be exactly what the DTO writes (contract 6.2, 6.7, 1.3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import pytest

from threadline_shared.dto.enums import PresenceStatus
from threadline_shared.dto.events import PresenceUpdateEvent
from threadline_shared.dto.presence import PresenceUpdate
from threadline_streamer.snapshot import presence_frame
from threadline_streamer.wire import ephemeral_frame

SEEN = [
    None,
    datetime(2026, 11, 28, 5, 0, 0, tzinfo=UTC),  # no fraction: still six digits
    datetime(2026, 11, 28, 5, 0, 0, 123456, tzinfo=UTC),
    datetime(2026, 11, 28, 7, 0, 0, 1, tzinfo=timezone(timedelta(hours=2))),  # written in UTC
    datetime(1999, 12, 31, 23, 59, 59, 999999),  # naive: taken as UTC
]


@pytest.mark.parametrize("status", list(PresenceStatus))
@pytest.mark.parametrize("seen", SEEN, ids=range(len(SEEN)))
def test_a_presence_frame_is_the_dtos_bytes(status: PresenceStatus, seen: datetime | None) -> None:
    update = PresenceUpdate(user_id=uuid4(), status=status, last_seen_at=seen)

    expected = ephemeral_frame("presence.update", PresenceUpdateEvent(payload=update).to_json())

    assert presence_frame(update) == expected
