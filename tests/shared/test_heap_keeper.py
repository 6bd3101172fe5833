"""threadline_shared.server: the collector's pauses are observed, and HeapKeeper freezes what survives the
young generations and reclaims frozen cyclic garbage at its own rate."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from threadline_shared.server import NO_AUTOMATIC_FULL_COLLECTION, HeapKeeper, settle_heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    yield
    gc.unfreeze()


async def run_for(keeper: HeapKeeper, seconds: float) -> None:
    task = asyncio.create_task(keeper.run())
    await asyncio.sleep(seconds)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def count(generation: int) -> float:
    value = REGISTRY.get_sample_value("threadline_gc_pause_seconds_count", {"generation": str(generation)})
    assert value is not None
    return value


def test_every_collection_after_settle_heap_is_observed() -> None:
    settle_heap()
    before = count(2)
    gc.collect()
    assert count(2) == before + 1


async def test_what_survives_is_frozen_and_frozen_garbage_waits_for_the_reclaim() -> None:
    gc.unfreeze()
    survivor = Node()
    gc.collect()
    await run_for(HeapKeeper(freeze_seconds=0.01, reclaim_seconds=3600), 0.05)
    assert gc.get_freeze_count() > 0
    assert any(obj is survivor for obj in gc.get_objects()) is False  # frozen: in no generation
    gone = asyncio.Event()
    reference = weakref.ref(survivor, lambda _: gone.set())
    del survivor
    gc.collect()  # a full pass skips the frozen: the cycle stays
    assert reference() is not None
    await run_for(HeapKeeper(freeze_seconds=0.01, reclaim_seconds=0.0), 0.05)
    assert reference() is None


async def test_while_it_runs_cpython_runs_no_full_collection_of_its_own() -> None:
    before = gc.get_threshold()
    keeper = asyncio.create_task(HeapKeeper(freeze_seconds=3600).run())
    await asyncio.sleep(0)
    try:
        assert gc.get_threshold() == (before[0], before[1], NO_AUTOMATIC_FULL_COLLECTION)
        settle_heap()  # observes every collection from now on
        full = count(2)
        survivors = [Node() for _ in range(150_000)]  # into the oldest generation: CPython would collect it
        assert count(2) == full
        del survivors
    finally:
        keeper.cancel()
        with pytest.raises(asyncio.CancelledError):
            await keeper
    assert gc.get_threshold() == before


async def test_two_keepers_stopping_out_of_order_give_the_threshold_back_once_both_stopped() -> None:
    before = gc.get_threshold()
    first = asyncio.create_task(HeapKeeper(freeze_seconds=3600).run())
    second = asyncio.create_task(HeapKeeper(freeze_seconds=3600).run())
    await asyncio.sleep(0)
    for keeper in (first, second):
        assert gc.get_threshold()[2] == NO_AUTOMATIC_FULL_COLLECTION
        keeper.cancel()
        with pytest.raises(asyncio.CancelledError):
            await keeper
    assert gc.get_threshold() == before


async def test_more_ended_than_live_work_brings_the_reclaim_before_its_time() -> None:
    settle_heap()
    garbage = Node()
    reference = weakref.ref(garbage)
    ended, live = [0], [10]
    keeper = HeapKeeper(
        freeze_seconds=0.01, reclaim_seconds=3600, ended=lambda: ended[0], live=lambda: live[0], minimum=5
    )
    task = asyncio.create_task(keeper.run())
    try:
        await asyncio.sleep(0.03)
        del garbage  # frozen by then
        ended[0] = 10  # as many ended as are live: not yet
        await asyncio.sleep(0.03)
        assert reference() is not None
        ended[0] = 11
        async with asyncio.timeout(5):
            while reference() is not None:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
