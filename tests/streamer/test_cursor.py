"""Resume cursors (contract 6.6): a decimal integer >= 0, nothing else, whatever its size."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from starlette.requests import Request

from threadline_shared.errors import InvalidRequest
from threadline_streamer.cursor import MAX_SEQ, AfterSeq, SinceTime, parse_cursor


def request(query: dict[str, str] | None = None, last_event_id: str | None = None) -> Request:
    headers = [] if last_event_id is None else [(b"last-event-id", last_event_id.encode("latin-1"))]
    return Request(
        {"type": "http", "method": "GET", "path": "/", "query_string": urlencode(query or {}).encode(),
         "headers": headers}
    )  # fmt: skip


@pytest.mark.parametrize("raw", ["5\n", "", "+5", "-5", " 5", "5 ", "0x10", "١٢", "1e3", "5.0"])
def test_anything_but_decimal_digits_is_refused_in_the_query(raw: str) -> None:
    for name in ("last_event_id", "since"):
        with pytest.raises(InvalidRequest):
            parse_cursor(request({name: raw}))


def test_the_header_may_carry_surrounding_spaces_but_nothing_else() -> None:
    assert parse_cursor(request(last_event_id=" 7 ")) == AfterSeq(7)
    for raw in ("7x", "", "-1", "7\t8"):
        with pytest.raises(InvalidRequest):
            parse_cursor(request(last_event_id=raw))


def test_leading_zeros_are_a_decimal_integer() -> None:
    assert parse_cursor(request({"last_event_id": "00012"})) == AfterSeq(12)


def test_a_sequence_number_beyond_any_stored_one_is_a_cursor_past_the_log_not_an_error() -> None:
    """Sequence numbers are PostgreSQL bigints: a larger cursor is above the latest, so the stream answers
    ``resync_required`` (6.6) instead of a 400 for a valid decimal integer."""
    assert parse_cursor(request({"last_event_id": "9" * 25})) == AfterSeq(MAX_SEQ)
    assert parse_cursor(request(last_event_id=str(MAX_SEQ + 1))) == AfterSeq(MAX_SEQ)
    assert parse_cursor(request({"last_event_id": "7" * 5000})) == AfterSeq(MAX_SEQ)  # past int()'s limit


def test_a_time_beyond_the_calendar_is_the_latest_time_not_an_error() -> None:
    """Nothing was created after it: the stream replays nothing and goes live."""
    latest = SinceTime(datetime.max.replace(tzinfo=UTC))
    assert parse_cursor(request({"since": "9" * 25})) == latest
    assert parse_cursor(request({"since": "9" * 5000})) == latest
    assert parse_cursor(request({"since": "253402300800000"})) == latest  # 10000-01-01
    assert parse_cursor(request({"since": "1700000000123"})) == SinceTime(
        datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
    )


def test_the_header_wins_over_the_query_and_last_event_id_over_since() -> None:
    assert parse_cursor(request({"last_event_id": "3", "since": "4"}, last_event_id="2")) == AfterSeq(2)
    assert parse_cursor(request({"last_event_id": "3", "since": "4"})) == AfterSeq(3)
    assert parse_cursor(request({})) is None
