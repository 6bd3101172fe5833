"""Resume cursors (contract 6.6): ``Last-Event-ID`` header, then ``?last_event_id=``, then ``?since=`` (epoch
milliseconds); the first present wins; each must be a decimal integer >= 0, else 400."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.requests import Request

from threadline_shared.errors import InvalidRequest

_DECIMAL = re.compile(r"^[0-9]{1,18}$")


@dataclass(frozen=True, slots=True)
class AfterSeq:
    seq: int


@dataclass(frozen=True, slots=True)
class SinceTime:
    at: datetime


Cursor = AfterSeq | SinceTime | None


def _integer(name: str, raw: str) -> int:
    if not _DECIMAL.match(raw):
        raise InvalidRequest.for_field(name, "must be a decimal integer >= 0")
    return int(raw)


def parse_cursor(request: Request) -> Cursor:
    header = request.headers.get("last-event-id")
    if header is not None:
        return AfterSeq(_integer("Last-Event-ID", header.strip()))
    query = request.query_params.get("last_event_id")
    if query is not None:
        return AfterSeq(_integer("last_event_id", query))
    since = request.query_params.get("since")
    if since is not None:
        millis = _integer("since", since)
        try:
            return SinceTime(datetime.fromtimestamp(millis / 1000, UTC))
        except (OverflowError, OSError, ValueError):
            raise InvalidRequest.for_field("since", "is out of range") from None
    return None
