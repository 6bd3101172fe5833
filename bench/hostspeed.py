"""How fast the shared host runs right now: the benchmarks print it before and after their run, so that
figures taken minutes apart can be compared (on the development machine the same code measured up to twice
as slow at times, with no steal reported)."""

from __future__ import annotations

import time


def reference_loop_seconds() -> float:
    """A fixed pure-Python loop (on the development machine 0.5 s at its quickest, twice that at times)."""
    started = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - started
