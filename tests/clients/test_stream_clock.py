"""The client's ``?since=`` after an early drop uses the server's clock (its ``Date`` header), never the
client's, and errs a second early (the header has whole seconds): a client clock that runs ahead loses
nothing."""

from __future__ import annotations

import time

from threadline_client.stream import _server_time_ms


def test_the_servers_date_less_a_second() -> None:
    assert _server_time_ms("Fri, 27 Nov 2026 17:10:42 GMT") == 1_795_799_442_000 - 1000


def test_without_a_usable_date_the_local_clock_less_a_second() -> None:
    for header in (None, "", "not a date"):
        before = int(time.time() * 1000) - 1000
        assert before <= _server_time_ms(header) <= int(time.time() * 1000) - 1000
