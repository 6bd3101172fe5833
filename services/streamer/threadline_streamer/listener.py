"""The supervised LISTEN connection (contract 6.9, STYLE 8).

One dedicated ``asyncpg.connect`` per process (a pooled connection would lose its listeners) listens on
``tl_events``; its callback only parses the payload and rings the hub. When the connection is lost the
supervisor reconnects with backoff (0.5 s doubling to 10 s) and has the hub catch up from the log for every
conversation with live subscribers.
"""

from __future__ import annotations

import logging

from threadline_shared.eventlog import EVENTS_CHANNEL, parse_notify_payload
from threadline_shared.listen import SupervisedListener
from threadline_streamer.hub import Hub

log = logging.getLogger(__name__)

# Names the LISTEN backend in pg_stat_activity, for operators (and the tests that cut it).
APPLICATION_NAME = "threadline-streamer-listener"


class Listener(SupervisedListener):
    """LISTEN on ``tl_events``: each doorbell rings the hub; every (re)connect catches up from the log."""

    def __init__(self, database_url: str, hub: Hub) -> None:
        super().__init__(
            database_url,
            {EVENTS_CHANNEL: self._on_doorbell},
            on_connected=hub.catch_up_all,
            application_name=APPLICATION_NAME,
        )
        self.hub = hub

    def _on_doorbell(self, payload: str) -> None:
        try:
            conversation_id, top = parse_notify_payload(payload)
        except ValueError:
            log.warning("ignoring malformed doorbell %r", payload)
            return
        self.hub.doorbell(conversation_id, top)
