"""The worker's supervised LISTEN connection on ``tl_jobs`` and ``tl_cancel`` (contract 6.9, STYLE 8).

A dedicated ``asyncpg.connect`` (a pooled connection would lose its listeners). Callbacks only hand ids on:
``tl_jobs`` wakes the dispatcher, ``tl_cancel`` (payload: the assistant message id) reaches the running job.
On loss it reconnects with backoff (0.5 s doubling to 10 s). Notifications are only a shortcut: the worker
also polls for jobs every second and for cancel flags every 500 ms, so nothing depends on one arriving.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from uuid import UUID

from threadline_api.assistant.jobs import CANCEL_CHANNEL, JOBS_CHANNEL
from threadline_shared.listen import SupervisedListener

log = logging.getLogger(__name__)


class JobSignals(SupervisedListener):
    def __init__(
        self, database_url: str, *, on_job: Callable[[], None], on_cancel: Callable[[UUID], None]
    ) -> None:
        # on (re)connect: jobs may have been queued while we were not listening
        super().__init__(
            database_url,
            {JOBS_CHANNEL: self._job_notified, CANCEL_CHANNEL: self._cancel_notified},
            on_connected=on_job,
        )
        self.on_job = on_job
        self.on_cancel = on_cancel

    def _job_notified(self, payload: str) -> None:
        self.on_job()

    def _cancel_notified(self, payload: str) -> None:
        try:
            message_id = UUID(payload)
        except ValueError:
            log.warning("ignoring malformed %s payload %r", CANCEL_CHANNEL, payload)
            return
        self.on_cancel(message_id)
