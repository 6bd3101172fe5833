"""Micro-batching: many concurrent callers, one round trip.

:class:`MicroBatcher` collects the items submitted during one turn of the event loop and hands them to one
call of its batch function (a single SQL query with ``= ANY($1)``, a single Redis pipeline); each caller gets
its own result back. Under load a hundred requests share one round trip; alone, a caller waits for nothing
but the next loop turn. A failing batch fails every caller in it with the same exception.

With ``max_in_flight``, items that arrive while that many batches are still running wait for one of them
to end, then go together. Under load the batches so grow with the rate instead of staying as small as one
loop turn's arrivals (which a busy, low-latency loop keeps small), and the fixed cost of a round trip is
shared by more callers. Measured on the presence heartbeat (bench/presence_heartbeats.py): see README.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class MicroBatcher(Generic[Item, Result]):
    def __init__(
        self,
        run: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]],
        *,
        max_size: int = 256,
        max_in_flight: int | None = None,
    ) -> None:
        """``run`` answers a batch with one result per item, in order; at most ``max_size`` items a call, and
        at most ``max_in_flight`` calls at once (None: no limit)."""
        self._run = run
        self._max_size = max_size
        self._max_in_flight = max_in_flight
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._flushes: set[asyncio.Task[None]] = set()

    @property
    def waiting(self) -> int:
        """How many items wait for a batch (all ``max_in_flight`` batches are running, or the loop has not
        turned yet)."""
        return len(self._pending)

    async def submit(self, item: Item) -> Result:
        return await self.enqueue(item)

    def enqueue(self, item: Item) -> asyncio.Future[Result]:
        """:meth:`submit` for callers that are not coroutines: the future of ``item``'s result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)  # after every caller that is ready in this turn has submitted
        self._pending.append((item, future))
        if len(self._pending) >= self._max_size:
            self._flush()
        return future

    def _flush(self) -> None:
        while self._pending and (self._max_in_flight is None or len(self._flushes) < self._max_in_flight):
            batch, self._pending = self._pending[: self._max_size], self._pending[self._max_size :]
            task = asyncio.get_running_loop().create_task(self._answer(batch))
            self._flushes.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._flushes.discard(task)
        self._flush()  # what waited for a free slot

    async def _answer(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._run([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"batch of {len(batch)} answered with {len(results)} results")
        except BaseException as exc:  # every caller learns it; cancellation included
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else asyncio.CancelledError())
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
