"""Message ids are UUIDv7 (RFC 9562), strictly increasing within a process; tokens are base64url."""

from __future__ import annotations

import re
import time
from uuid import UUID

from threadline_shared.ids import (
    Uuid7Generator,
    csrf_token,
    invite_token,
    path_label,
    session_token,
    uuid7,
    uuid7_time_ms,
)


def test_uuid7_has_version_7_and_the_rfc_variant() -> None:
    value = uuid7()
    assert value.version == 7
    assert value.variant == "specified in RFC 4122"


def test_uuid7_embeds_the_current_unix_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000
    assert before <= uuid7_time_ms(value) <= after


def test_uuid7_increases_strictly_even_within_one_millisecond() -> None:
    generate = Uuid7Generator()
    ids = [generate(now_ms=1_700_000_000_000) for _ in range(10_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(value.version == 7 for value in ids)


def test_uuid7_never_goes_backwards_when_the_clock_does() -> None:
    generate = Uuid7Generator()
    late = generate(now_ms=1_800_000_000_000)
    early = generate(now_ms=1_700_000_000_000)
    assert early > late


def test_path_label_is_m_and_32_hex_digits() -> None:
    value = UUID("0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80")
    assert path_label(value) == "m0193a5b27c1e7d3a9f213b4c5d6e7f80"


def test_tokens_are_base64url_without_padding_of_the_contract_lengths() -> None:
    alphabet = re.compile(r"^[A-Za-z0-9_-]+$")
    for token, length in ((session_token(), 43), (csrf_token(), 22), (invite_token(), 43)):
        assert len(token) == length
        assert alphabet.match(token)
    assert session_token() != session_token()
