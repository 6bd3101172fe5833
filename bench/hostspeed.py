"""How fast the shared host runs right now: the benchmarks print it before and after their run, so that
figures taken minutes apart can be compared (on the development machine the same code measured up to twice
as slow at times, with no steal reported).

    .venv/bin/python bench/hostspeed.py     # the loop idle, then while another process keeps a CPU busy

Run as a script it also shows what a busy neighbour does to one CPU's speed. Two runs on the 2-CPU
development machine (2026-11-28): idle 0.49-0.88 s; with the other CPU busy 0.51-1.17 s (medians 0.95 and
0.66 s). A busy neighbour often, not always, slows a CPU by up to twofold, and the host's own swings are of
the same size: the benchmarks, which keep both CPUs busy for minutes, see both.
"""

from __future__ import annotations

import multiprocessing
import time


def reference_loop_seconds() -> float:
    """A fixed pure-Python loop (on the development machine 0.5 s at its quickest, twice that at times)."""
    started = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - started


def _burn(until: float) -> None:
    while time.time() < until:
        sum(range(10_000))


def main(seconds: float = 40.0) -> None:
    print("idle               " + ", ".join(f"{reference_loop_seconds():.2f} s" for _ in range(3)))
    until = time.time() + seconds
    neighbour = multiprocessing.Process(target=_burn, args=(until,))
    neighbour.start()
    started = time.time()
    while time.time() < until:
        elapsed = time.time() - started
        print(f"neighbour busy     t+{elapsed:3.0f} s: {reference_loop_seconds():.2f} s", flush=True)
        time.sleep(2)
    neighbour.join()
    print("idle again         " + ", ".join(f"{reference_loop_seconds():.2f} s" for _ in range(3)))


if __name__ == "__main__":
    main()
