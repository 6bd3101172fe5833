"""One generation (contract 9.5, 9.7, 9.8) with the scripted provider and an in-memory sink: batching by count
and by time, the final flush, cancel, shutdown, timeout on a stalled provider, provider errors, a lost job."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from threadline_api.assistant.batching import Batch, Batcher
from threadline_api.assistant.finish import Outcome
from threadline_api.assistant.generation import JobControl, StopReason, generate
from threadline_api.assistant.prompt import build_prompt
from threadline_api.assistant.providers.base import GenerationRequest, ProviderUsage
from threadline_api.assistant.providers.scripted import Script, ScriptedProvider

REQUEST = GenerationRequest(prompt=build_prompt([]), trigger_content="go", max_tokens=16)


@dataclass
class Sink:
    batches: list[Batch] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    accept: bool = True
    written: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, batch: Batch) -> bool:
        self.batches.append(batch)
        self.times.append(time.monotonic())
        self.written.set()
        return self.accept

    @property
    def text(self) -> str:
        return "".join(batch.text for batch in self.batches)


async def run(
    script: Script,
    *,
    sink: Sink | None = None,
    control: JobControl | None = None,
    timeout: float | None = None,
    max_deltas: int = 64,
    interval: float = 0.05,
) -> tuple[Outcome | None, Sink]:
    sink = sink or Sink()
    deadline = time.monotonic() + timeout if timeout is not None else None
    async with asyncio.timeout(10):
        outcome = await generate(
            ScriptedProvider(script),
            REQUEST,
            control or JobControl(),
            sink,
            batcher=Batcher(max_deltas=max_deltas, interval_seconds=interval),
            deadline=deadline,
            clock=time.monotonic,
        )
    return outcome, sink


async def test_a_burst_is_flushed_every_64_deltas_and_once_at_the_end() -> None:
    outcome, sink = await run(Script(deltas=("x",) * 130), interval=60)
    assert [(batch.idx, len(batch.text)) for batch in sink.batches] == [(0, 64), (1, 64), (2, 2)]
    assert outcome == Outcome.finished("stop")


async def test_slow_deltas_are_flushed_by_time_after_the_first_buffered_one() -> None:
    deltas = tuple(f"w{n} " for n in range(12))
    # 12 deltas at least 10 ms apart span more than one 100 ms interval: the timer must fire at least once
    # before the end, and a batch holds several deltas.
    outcome, sink = await run(Script(deltas=deltas, delay_ms=10), interval=0.1)
    assert sink.text == "".join(deltas)
    assert [batch.idx for batch in sink.batches] == list(range(len(sink.batches)))
    assert 2 <= len(sink.batches) < len(deltas)
    assert outcome == Outcome.finished("stop")


async def test_empty_deltas_never_become_chunks() -> None:
    _, sink = await run(Script(deltas=("", "a", "", "b", "")))
    assert sink.text == "ab"
    _, nothing = await run(Script(deltas=("", "")))
    assert nothing.batches == []


async def test_the_providers_finish_reason_and_usage_are_the_outcome() -> None:
    usage = ProviderUsage(prompt_tokens=3, completion_tokens=2, total_tokens=5)
    outcome, _ = await run(Script(deltas=("a",), finish_reason="length", usage=usage))
    assert outcome == Outcome.finished("length", usage)


async def test_a_provider_error_flushes_what_came_before_it() -> None:
    outcome, sink = await run(Script(deltas=("a", "b", "c"), error_after=2))
    assert outcome == Outcome.failed("scripted error")
    assert sink.text == "ab"


async def test_a_stalled_provider_times_out_with_its_text_so_far() -> None:
    started = time.monotonic()
    outcome, sink = await run(Script(deltas=("a", "b", "c"), stall_after=2), timeout=0.3)
    assert outcome == Outcome.timed_out()
    assert sink.text == "ab"
    assert 0.3 <= time.monotonic() - started < 2.0


async def test_a_provider_that_sends_nothing_is_stopped_at_the_deadline() -> None:
    outcome, sink = await run(Script(deltas=("a",), stall_after=0), timeout=0.2)
    assert outcome == Outcome.timed_out()
    assert sink.batches == []


async def test_a_steady_stream_still_stops_at_the_deadline() -> None:
    outcome, sink = await run(Script(deltas=("x",) * 1000, delay_ms=5), timeout=0.3)
    assert outcome == Outcome.timed_out()
    assert 0 < len(sink.text) < 1000


async def test_a_cancel_stops_at_once_and_writes_nothing_after_it() -> None:
    control = JobControl()
    sink = Sink()
    task = asyncio.create_task(run(Script(deltas=("tok ",) * 50, delay_ms=40), sink=sink, control=control))
    await asyncio.wait_for(sink.written.wait(), 5)
    cancelled_at = time.monotonic()
    control.request(StopReason.CANCELLED)
    outcome, _ = await task
    assert outcome == Outcome.cancelled()
    assert time.monotonic() - cancelled_at < 0.5, "well within the 1 s of 9.7"
    assert len([t for t in sink.times if t > cancelled_at]) <= 1, "at most the buffer held at the cancel"
    assert sink.text.count("tok ") < 50


async def test_a_cancel_of_a_stalled_provider_is_seen_without_waiting() -> None:
    control = JobControl()
    task = asyncio.create_task(run(Script(deltas=("a",), stall_after=1), control=control))
    await asyncio.sleep(0.1)
    control.request(StopReason.CANCELLED)
    outcome, sink = await asyncio.wait_for(task, 1.0)
    assert outcome == Outcome.cancelled()
    assert sink.text == "a"


async def test_shutdown_finishes_as_worker_stopped() -> None:
    control = JobControl()
    control.request(StopReason.SHUTDOWN)
    outcome, _ = await run(Script(deltas=("a",), stall_after=0), control=control)
    assert outcome == Outcome.failed("worker stopped")


async def test_a_lost_job_writes_nothing_more() -> None:
    control = JobControl()
    sink = Sink()
    task = asyncio.create_task(run(Script(deltas=("a",) * 20, delay_ms=10), sink=sink, control=control))
    await asyncio.sleep(0.05)
    control.request(StopReason.CANCELLED)
    control.request(StopReason.LOST)  # lost wins over any other stop
    outcome, _ = await task
    assert outcome is None
    written = len(sink.batches)
    await asyncio.sleep(0.1)
    assert len(sink.batches) == written


async def test_a_sink_that_finds_the_reply_finished_elsewhere_ends_the_generation() -> None:
    outcome, sink = await run(Script(deltas=("x",) * 200), sink=Sink(accept=False))
    assert outcome is None
    assert len(sink.batches) == 1
