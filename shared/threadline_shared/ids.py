"""Identifiers and tokens (contract 1.2).

:func:`uuid7` makes RFC 9562 UUIDv7 message ids that increase strictly within a process, even within one
millisecond (a 12-bit counter in ``rand_a``; on overflow the timestamp advances by one millisecond).
Tokens are base64url without padding from :mod:`secrets`.
"""

from __future__ import annotations

import base64
import os
import secrets
import threading
import time
from uuid import UUID


class Uuid7Generator:
    """Strictly increasing UUIDv7s; one instance per process (:func:`uuid7`), own instances in tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._counter = 0

    def __call__(self, now_ms: int | None = None) -> UUID:
        with self._lock:
            ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
            if ms > self._last_ms:
                self._last_ms = ms
                self._counter = secrets.randbits(11)  # leave headroom for same-millisecond ids
            else:
                self._counter += 1
                if self._counter > 0xFFF:
                    self._last_ms += 1
                    self._counter = 0
            ms, counter = self._last_ms, self._counter
        rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
        value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b
        return UUID(int=value)


uuid7 = Uuid7Generator()
"""A new UUIDv7, strictly greater than every one this process made before."""


def uuid7_time_ms(value: UUID) -> int:
    """The Unix milliseconds embedded in a UUIDv7."""
    return value.int >> 80


def path_label(message_id: UUID) -> str:
    """``m`` + the 32 lowercase hex digits of the id (contract 1.2)."""
    return "m" + message_id.hex


def new_token(n_bytes: int) -> str:
    """A base64url token without padding from ``n_bytes`` random bytes."""
    return base64.urlsafe_b64encode(secrets.token_bytes(n_bytes)).rstrip(b"=").decode("ascii")


def session_token() -> str:
    return new_token(32)


def csrf_token() -> str:
    return new_token(16)


def invite_token() -> str:
    return new_token(32)
