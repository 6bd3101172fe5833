"""Streamer-only metrics, beside the shared ones of contract 2.5."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

DOORBELL_TO_QUEUE = Histogram(
    "threadline_stream_doorbell_to_queue_seconds",
    "From a doorbell to its events queued on every connection",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
DOORBELL_TO_WRITE = Histogram(
    "threadline_stream_doorbell_to_write_seconds",
    "From a doorbell (or an ephemeral event's arrival) to the write that carried its events",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
REPLAYED = Counter("threadline_stream_replayed_events_total", "Durable events sent by replay")
STREAM_WRITES = Counter(
    "threadline_stream_live_writes_total",
    "Socket writes of the live fan-out made at once: one per connection per conversation per round, carrying "
    "every event of the round for it (frames that had to queue are written later by the connection's loop)",
)
