"""The assistant worker loop (contract 9.2, 9.7, 9.8).

- **Dispatch**: wake on ``NOTIFY tl_jobs`` (:mod:`.listener`) and also every second; first finish any job
  whose lease lapsed (at most once a second), then claim the oldest queued jobs while fewer than
  ``THREADLINE_ASSISTANT_CONCURRENCY`` run here.
- **Keeper**: every 500 ms, read the cancel flags of the jobs running here (``NOTIFY tl_cancel`` usually
  arrives first); every third of the lease, renew their leases. A job whose lease was taken over is stopped
  without writing anything more.
- **Jobs**: each runs :func:`.generation.generate` and then the finish transaction, in a task of the worker's
  TaskGroup. A job never ends silently: an unexpected failure finishes it as an error; if even that cannot be
  written, its lease lapses and any worker finishes it as ``worker lost``.
- **Stop**: :meth:`Worker.stop` stops claiming and has the running jobs finish as errors (``worker stopped``);
  :meth:`Worker.run` returns once they have.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass
from uuid import UUID, uuid4

import asyncpg

from threadline_api.assistant import output
from threadline_api.assistant.batching import Batch, Batcher
from threadline_api.assistant.finish import WORKER_STOPPED, Outcome
from threadline_api.assistant.generation import JobControl, MonotonicClock, StopReason, generate
from threadline_api.assistant.jobs import ClaimedJob, Reply, cancel_requested, claim_next, renew_leases
from threadline_api.assistant.listener import JobSignals
from threadline_api.assistant.providers.base import GenerationRequest, Provider
from threadline_shared.settings import Settings

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
CANCEL_POLL_SECONDS = 0.5
RECOVERY_INTERVAL_SECONDS = 1.0
SHUTDOWN_FINISH_SECONDS = 5.0
DATABASE_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
INTERNAL_ERROR = "internal error"


@dataclass
class RunningJob:
    reply: Reply
    control: JobControl


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:8]}"


class Worker:
    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        provider: Provider,
        *,
        clock: MonotonicClock = time.monotonic,
        worker_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.provider = provider
        self.clock = clock
        self.worker_id = worker_id or new_worker_id()
        self.signals = JobSignals(settings.database_url, on_job=self.wake, on_cancel=self._cancel_message)
        self._running: dict[UUID, RunningJob] = {}
        self._by_message: dict[UUID, UUID] = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._next_recovery = 0.0

    @property
    def running(self) -> int:
        return len(self._running)

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Stop claiming; running jobs finish as ``worker stopped``; :meth:`run` then returns."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        log.info("assistant worker %s: provider %s", self.worker_id, self.provider.name)
        async with asyncio.TaskGroup() as infra:
            listening = infra.create_task(self.signals.run())
            keeping = infra.create_task(self._keep())
            try:
                async with asyncio.TaskGroup() as jobs:
                    await self._dispatch(jobs)
                    for job in self._running.values():
                        job.control.request(StopReason.SHUTDOWN)
            finally:
                listening.cancel()
                keeping.cancel()

    # ---- dispatch ---------------------------------------------------------------------------------------

    async def _dispatch(self, jobs: asyncio.TaskGroup) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                await self._recover_expired()
                while (
                    len(self._running) < self.settings.assistant_concurrency and not self._stopping.is_set()
                ):
                    claimed = await self._claim()
                    if claimed is None:
                        break
                    self._start(jobs, claimed)
            except DATABASE_ERRORS as exc:
                log.warning("assistant dispatch failed (%s); retrying", exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECONDS):
                    await self._wake.wait()

    async def _claim(self) -> ClaimedJob | None:
        async with self.pool.acquire() as conn:
            return await claim_next(
                conn,
                worker_id=self.worker_id,
                lease_seconds=self.settings.assistant_lease_seconds,
                system_prompt=self.settings.assistant_system_prompt,
                unread_fanout_max=self.settings.unread_fanout_max_participants,
            )

    async def _recover_expired(self) -> None:
        now = self.clock()
        if now < self._next_recovery:
            return
        self._next_recovery = now + RECOVERY_INTERVAL_SECONDS
        while True:
            async with self.pool.acquire() as conn:
                try:
                    reply = await output.recover_expired(
                        conn, system_prompt=self.settings.assistant_system_prompt
                    )
                except output.RecoveryBusy:
                    return  # next round
            if reply is None:
                return
            log.warning("assistant job %s: lease lapsed, finished as worker lost", reply.job_id)

    def _start(self, jobs: asyncio.TaskGroup, claimed: ClaimedJob) -> None:
        timeout = self.settings.assistant_timeout_seconds
        deadline = self.clock() + timeout if timeout > 0 else None
        job = RunningJob(claimed.reply, JobControl())
        self._running[claimed.reply.job_id] = job
        self._by_message[claimed.reply.message_id] = claimed.reply.job_id
        jobs.create_task(self._run_job(claimed, job, deadline))

    def _cancel_message(self, message_id: UUID) -> None:
        job_id = self._by_message.get(message_id)
        if job_id is not None and job_id in self._running:
            self._running[job_id].control.request(StopReason.CANCELLED)

    # ---- one job ----------------------------------------------------------------------------------------

    async def _run_job(self, claimed: ClaimedJob, job: RunningJob, deadline: float | None) -> None:
        reply, prompt_words = claimed.reply, claimed.prompt.word_count()
        try:
            outcome = await generate(
                self.provider,
                self._request(claimed),
                job.control,
                lambda batch: self._flush(reply, batch),
                batcher=Batcher(
                    max_deltas=self.settings.assistant_flush_max_tokens,
                    interval_seconds=self.settings.assistant_flush_interval_ms / 1000,
                ),
                deadline=deadline,
                clock=self.clock,
            )
            if outcome is not None:
                await self._finish(reply, outcome, prompt_words)
        except asyncio.CancelledError:
            # Cancelled from outside (not through stop()): still end the reply, shielded and bounded.
            finishing = asyncio.shield(self._finish(reply, Outcome.failed(WORKER_STOPPED), prompt_words))
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(finishing, SHUTDOWN_FINISH_SECONDS)
            raise
        except Exception:
            log.exception("assistant job %s failed", reply.job_id)
            try:
                await self._finish(reply, Outcome.failed(INTERNAL_ERROR), prompt_words)
            except Exception:
                log.exception("assistant job %s: finish failed; its lease will lapse", reply.job_id)
        finally:
            self._running.pop(reply.job_id, None)
            self._by_message.pop(reply.message_id, None)
            self._wake.set()

    def _request(self, claimed: ClaimedJob) -> GenerationRequest:
        stop = self.settings.assistant_stop_sequences
        return GenerationRequest(
            prompt=claimed.prompt,
            trigger_content=claimed.trigger_content,
            max_tokens=self.settings.assistant_max_tokens,
            temperature=self.settings.assistant_temperature,
            stop=tuple(stop) if stop else None,
        )

    async def _flush(self, reply: Reply, batch: Batch) -> bool:
        async with self.pool.acquire() as conn:
            return await output.flush(conn, reply, batch)

    async def _finish(self, reply: Reply, outcome: Outcome, prompt_words: int) -> None:
        async with self.pool.acquire() as conn:
            final = await output.finish(conn, reply, outcome, prompt_words=prompt_words)
        if final is None:
            log.warning("assistant job %s was finished elsewhere", reply.job_id)

    # ---- keeper -----------------------------------------------------------------------------------------

    async def _keep(self) -> None:
        lease = self.settings.assistant_lease_seconds
        tick = min(CANCEL_POLL_SECONDS, lease / 3)
        next_renewal = self.clock() + lease / 3
        while True:
            await asyncio.sleep(tick)
            job_ids = list(self._running)
            if not job_ids:
                next_renewal = self.clock() + lease / 3
                continue
            try:
                async with self.pool.acquire() as conn:
                    for job_id in await cancel_requested(conn, job_ids):
                        self._request_stop(job_id, StopReason.CANCELLED)
                    if self.clock() >= next_renewal:
                        next_renewal = self.clock() + lease / 3
                        held = await renew_leases(
                            conn, job_ids, worker_id=self.worker_id, lease_seconds=lease
                        )
                        for job_id in set(job_ids) - held:
                            self._request_stop(job_id, StopReason.LOST)
            except DATABASE_ERRORS as exc:
                log.warning("assistant lease/cancel check failed: %s", exc)

    def _request_stop(self, job_id: UUID, reason: StopReason) -> None:
        job = self._running.get(job_id)
        if job is not None:
            job.control.request(reason)
