"""Passwords: Argon2id with argon2-cffi's defaults, stored as PHC strings (contract 3.1).

Hashing takes a few hundred milliseconds of CPU here, so it runs in a worker thread. Unknown users are checked
against a dummy hash so that "no such user" and "wrong password" take similar time.
``THREADLINE_PASSWORD_HASHING=fast`` (test suites only) uses argon2-cffi's cheapest Argon2id parameters.
"""

from __future__ import annotations

import asyncio
from functools import cached_property
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.profiles import CHEAPEST


class Passwords:
    def __init__(self, profile: Literal["default", "fast"] = "default") -> None:
        self._hasher = PasswordHasher.from_parameters(CHEAPEST) if profile == "fast" else PasswordHasher()

    @cached_property
    def _dummy_hash(self) -> str:
        return self._hasher.hash("threadline-dummy-password")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    def _verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash or self._dummy_hash, password) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; ``stored_hash=None`` spends the same time and says False."""
        return await asyncio.to_thread(self._verify, stored_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)
