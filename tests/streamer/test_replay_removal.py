"""A member removed while their stream resumes (contract 4.3 step 6, 6.8): the replay writes the removal and
nothing after it, like the live path (threadline_streamer.replay.until_removed)."""

from __future__ import annotations

import uuid

import orjson

from threadline_streamer.replay import until_removed


def row(seq: int, event_type: str, payload: dict[str, str]) -> dict[str, object]:
    return {
        "seq": seq,
        "type": event_type,
        "envelope": orjson.dumps({"type": event_type, "payload": payload}),
    }


def test_the_replay_ends_with_the_members_own_removal() -> None:
    me, other = uuid.uuid4(), uuid.uuid4()
    rows = [
        row(1, "thread.new", {"root_id": "r"}),
        row(2, "membership.changed", {"action": "removed", "user_id": str(other), "role": "member"}),
        row(3, "membership.changed", {"action": "added", "user_id": str(me), "role": "member"}),
        row(4, "membership.changed", {"action": "removed", "user_id": str(me), "role": "member"}),
        row(5, "thread.new", {"root_id": "after"}),
    ]
    kept, removed = until_removed(rows, me)
    assert [r["seq"] for r in kept] == [1, 2, 3, 4] and removed
    kept, removed = until_removed(rows[:3], me)
    assert [r["seq"] for r in kept] == [1, 2, 3] and not removed
    assert until_removed([], me) == ([], False)


def test_an_envelope_stored_as_text_reads_the_same() -> None:
    me = uuid.uuid4()
    removal = row(7, "membership.changed", {"action": "removed", "user_id": str(me), "role": "admin"})
    removal["envelope"] = bytes(removal["envelope"]).decode()  # type: ignore[arg-type]
    assert until_removed([removal, row(8, "thread.new", {})], me) == ([removal], True)
