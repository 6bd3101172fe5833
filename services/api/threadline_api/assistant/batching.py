"""Batching provider deltas into chunks (contract 9.5), as pure logic over a caller-supplied time.

Empty deltas are ignored. The buffer is due at ``max_deltas`` deltas or ``interval`` seconds after its first
delta, whichever comes first, and is taken once more at the end. Each taken batch gets the next ``idx``,
from 0, contiguous.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Batch:
    idx: int
    text: str


class Batcher:
    def __init__(self, *, max_deltas: int, interval_seconds: float) -> None:
        self.max_deltas = max_deltas
        self.interval_seconds = interval_seconds
        self._parts: list[str] = []
        self._first_at: float | None = None
        self._next_idx = 0

    @property
    def pending(self) -> bool:
        return bool(self._parts)

    @property
    def flush_at(self) -> float | None:
        """When the buffer falls due by time; None while it is empty."""
        return None if self._first_at is None else self._first_at + self.interval_seconds

    @property
    def next_idx(self) -> int:
        return self._next_idx

    def add(self, text: str, now: float) -> bool:
        """Buffer one delta; True when the buffer is due now (by count or by time)."""
        if text:
            if self._first_at is None:
                self._first_at = now
            self._parts.append(text)
        return self.due(now)

    def due(self, now: float) -> bool:
        if not self._parts:
            return False
        assert self._first_at is not None
        return len(self._parts) >= self.max_deltas or now >= self._first_at + self.interval_seconds

    def take(self) -> Batch | None:
        """The buffered text as the next batch, or None when nothing is buffered."""
        if not self._parts:
            return None
        batch = Batch(self._next_idx, "".join(self._parts))
        self._next_idx += 1
        self._parts.clear()
        self._first_at = None
        return batch
