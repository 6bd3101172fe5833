"""Resume cursors (contract 6.6): ``Last-Event-ID`` header, then ``?last_event_id=``, then ``?since=`` (epoch
milliseconds); the first present wins; each must be a decimal integer >= 0 (ASCII digits only), else 400.

Any size is a cursor: a sequence number beyond PostgreSQL's bigint is taken as the largest one (a cursor past
the log, so ``resync_required``), and a time beyond the calendar as the latest time (nothing to replay)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.requests import Request

from threadline_shared.errors import InvalidRequest

_DECIMAL = re.compile(r"[0-9]+")
MAX_SEQ = 2**63 - 1
"""The largest sequence number PostgreSQL can store (bigint)."""
_LATEST = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class AfterSeq:
    seq: int


@dataclass(frozen=True, slots=True)
class SinceTime:
    at: datetime


Cursor = AfterSeq | SinceTime | None


def _integer(name: str, raw: str) -> int:
    if not _DECIMAL.fullmatch(raw):
        raise InvalidRequest.for_field(name, "must be a decimal integer >= 0")
    return int(raw) if len(raw) <= 4000 else MAX_SEQ + 1  # int() refuses longer digit strings


def _after(name: str, raw: str) -> AfterSeq:
    return AfterSeq(min(_integer(name, raw), MAX_SEQ))


def parse_cursor(request: Request) -> Cursor:
    header = request.headers.get("last-event-id")
    if header is not None:
        return _after("Last-Event-ID", header.strip())
    query = request.query_params.get("last_event_id")
    if query is not None:
        return _after("last_event_id", query)
    since = request.query_params.get("since")
    if since is not None:
        millis = _integer("since", since)
        try:
            return SinceTime(datetime.fromtimestamp(millis / 1000, UTC))
        except (OverflowError, OSError, ValueError):
            return SinceTime(_LATEST)
    return None
