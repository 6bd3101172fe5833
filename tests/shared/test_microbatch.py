"""MicroBatcher: the callers of one loop turn share one call of the batch function; each gets its own
answer, in order; a failed batch fails each of its callers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from threadline_shared.microbatch import MicroBatcher


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    async def double(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        await asyncio.sleep(0)
        return [item * 2 for item in items]


async def test_concurrent_callers_share_one_call() -> None:
    recorder = Recorder()
    batcher = MicroBatcher(recorder.double)
    assert await asyncio.gather(*(batcher.submit(n) for n in range(10))) == [n * 2 for n in range(10)]
    assert recorder.batches == [list(range(10))]


async def test_a_lone_caller_is_answered_at_once() -> None:
    recorder = Recorder()
    batcher = MicroBatcher(recorder.double)
    assert await batcher.submit(21) == 42
    assert await batcher.submit(1) == 2
    assert recorder.batches == [[21], [1]]


async def test_a_batch_never_exceeds_its_size() -> None:
    recorder = Recorder()
    batcher = MicroBatcher(recorder.double, max_size=4)
    assert await asyncio.gather(*(batcher.submit(n) for n in range(10))) == [n * 2 for n in range(10)]
    assert recorder.batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


async def test_callers_arriving_while_a_batch_runs_form_the_next_one() -> None:
    recorder = Recorder()
    batcher = MicroBatcher(recorder.double)
    first = asyncio.gather(*(batcher.submit(n) for n in range(3)))
    await asyncio.sleep(0)
    second = asyncio.gather(*(batcher.submit(n) for n in range(3, 5)))
    assert await first == [0, 2, 4]
    assert await second == [6, 8]
    assert recorder.batches == [[0, 1, 2], [3, 4]]


async def test_a_failed_batch_fails_each_caller_and_the_next_batch_still_runs() -> None:
    calls = 0

    async def flaky(items: Sequence[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("down")
        return list(items)

    batcher = MicroBatcher(flaky)
    results = await asyncio.gather(*(batcher.submit(n) for n in range(3)), return_exceptions=True)
    assert all(isinstance(result, ConnectionError) for result in results)
    assert await batcher.submit(7) == 7


async def test_a_batch_answered_with_the_wrong_count_is_an_error() -> None:
    async def short(items: Sequence[int]) -> list[int]:
        return list(items)[:-1]

    batcher = MicroBatcher(short)
    with pytest.raises(RuntimeError, match="answered with 1 results"):
        await asyncio.gather(batcher.submit(1), batcher.submit(2))


async def test_with_one_batch_in_flight_what_arrives_meanwhile_goes_next_together_in_order() -> None:
    release = asyncio.Event()
    batches: list[list[int]] = []
    running = 0

    async def slow(items: Sequence[int]) -> list[int]:
        nonlocal running
        running += 1
        assert running == 1, "two batches at once"
        batches.append(list(items))
        await release.wait()
        running -= 1
        return [item * 2 for item in items]

    batcher = MicroBatcher(slow, max_size=3, max_in_flight=1)
    first = asyncio.ensure_future(batcher.submit(0))
    await asyncio.sleep(0.01)  # the first batch is running
    later = [asyncio.ensure_future(batcher.submit(n)) for n in range(1, 6)]
    await asyncio.sleep(0.01)
    assert batches == [[0]], "the others wait for the batch in flight"

    release.set()
    assert await asyncio.gather(first, *later) == [n * 2 for n in range(6)]
    assert batches == [[0], [1, 2, 3], [4, 5]]
