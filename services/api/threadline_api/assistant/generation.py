"""One generation: provider deltas in, batched flushes out, until the provider ends or something stops it
(contract 9.5, 9.7, 9.8).

The provider runs in its own task and feeds a bounded queue; this side takes deltas from the queue, batches
them (:mod:`.batching`) and hands each due batch to a sink (the flush transaction). It stops on the provider's
end or failure, on a cancel, on worker shutdown, or at the deadline (a provider that sends nothing is stopped
too: the wait for the next delta is bounded by the deadline and the batch's due time). Then the provider task
is cancelled, whatever is buffered is flushed once more, and the outcome goes to the finish transaction. No
delta is written after a stop takes effect, and nothing at all once the job is lost (another worker took it
over): then the result is None.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from enum import Enum

from threadline_api.assistant.batching import Batch, Batcher
from threadline_api.assistant.finish import WORKER_STOPPED, Outcome
from threadline_api.assistant.providers.base import (
    Delta,
    Finished,
    GenerationRequest,
    Provider,
    ProviderError,
    ProviderItem,
)

log = logging.getLogger(__name__)

QUEUE_SIZE = 256
Sink = Callable[[Batch], Awaitable[bool]]
"""Writes one batch; False when the job turned out to be finished elsewhere."""
MonotonicClock = Callable[[], float]


class StopReason(Enum):
    CANCELLED = "cancelled"
    SHUTDOWN = "shutdown"
    LOST = "lost"


@dataclass(frozen=True, slots=True)
class _Failure:
    text: str


class _Wake:
    """Put on a job's queue so that a stop request is seen at once."""


_WAKE = _Wake()
_Item = ProviderItem | _Failure | _Wake


class JobControl:
    """Stop requests from outside a running generation: cancel (flag or NOTIFY), worker shutdown, or the
    lease lost to another worker (which wins over the others, since nothing may be written then)."""

    def __init__(self) -> None:
        self.stop: StopReason | None = None
        self._queue: asyncio.Queue[_Item] | None = None

    def request(self, reason: StopReason) -> None:
        if self.stop is None or reason is StopReason.LOST:
            self.stop = reason
        if self._queue is not None:
            try:
                self._queue.put_nowait(_WAKE)
            except asyncio.QueueFull:
                pass  # the generation has items waiting, and checks the stop before each one

    def attach(self, queue: asyncio.Queue[_Item]) -> None:
        self._queue = queue


async def generate(
    provider: Provider,
    request: GenerationRequest,
    control: JobControl,
    sink: Sink,
    *,
    batcher: Batcher,
    deadline: float | None,
    clock: MonotonicClock,
) -> Outcome | None:
    """Run the provider to an outcome, flushing through ``sink``; None when the job was lost."""
    queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=QUEUE_SIZE)
    control.attach(queue)
    async with asyncio.TaskGroup() as tasks:
        pump = tasks.create_task(_pump(provider, request, queue))
        try:
            outcome = await _consume(queue, control, sink, batcher, deadline, clock)
        finally:
            pump.cancel()
    if outcome is None or control.stop is StopReason.LOST:
        return None
    batch = batcher.take()
    if batch is not None and not await sink(batch):
        return None
    return outcome


async def _pump(provider: Provider, request: GenerationRequest, queue: asyncio.Queue[_Item]) -> None:
    try:
        async with aclosing(provider.stream(request)) as items:
            async for item in items:
                await queue.put(item)
                if isinstance(item, Finished):
                    return
        await queue.put(Finished())
    except ProviderError as exc:
        await queue.put(_Failure(exc.text))
    except Exception:
        log.exception("provider %s failed unexpectedly", provider.name)
        await queue.put(_Failure("provider failed unexpectedly"))


async def _consume(
    queue: asyncio.Queue[_Item],
    control: JobControl,
    sink: Sink,
    batcher: Batcher,
    deadline: float | None,
    clock: MonotonicClock,
) -> Outcome | None:
    while True:
        if control.stop is not None:
            return _stopped(control.stop)
        now = clock()
        if deadline is not None and now >= deadline:
            return Outcome.timed_out()
        if batcher.due(now) and not await _flush(batcher, sink):
            return None
        if queue.empty():
            waited = await _next_item(queue, _wait_until(batcher.flush_at, deadline), clock)
            if waited is None:
                continue  # a batch or the deadline fell due
            item = waited
        else:
            item = queue.get_nowait()
        match item:
            case Delta(text=text):
                if batcher.add(text, clock()) and not await _flush(batcher, sink):
                    return None
            case Finished(finish_reason=reason, usage=usage):
                return Outcome.finished(reason, usage)
            case _Failure(text=text):
                return Outcome.failed(text)
            case _Wake():
                continue


def _stopped(reason: StopReason) -> Outcome | None:
    if reason is StopReason.CANCELLED:
        return Outcome.cancelled()
    if reason is StopReason.SHUTDOWN:
        return Outcome.failed(WORKER_STOPPED)
    return None


def _wait_until(*moments: float | None) -> float | None:
    due = [moment for moment in moments if moment is not None]
    return min(due) if due else None


async def _next_item(queue: asyncio.Queue[_Item], until: float | None, clock: MonotonicClock) -> _Item | None:
    """The next item, or None when ``until`` passes first."""
    timeout = None if until is None else max(0.0, until - clock())
    try:
        async with asyncio.timeout(timeout):
            return await queue.get()
    except TimeoutError:
        return None


async def _flush(batcher: Batcher, sink: Sink) -> bool:
    batch = batcher.take()
    return batch is None or await sink(batch)
