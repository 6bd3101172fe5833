"""Batching of contract 9.5 with a controlled time: 64 deltas or 50 ms after the first, empty deltas ignored,
contiguous idx from 0."""

from __future__ import annotations

from threadline_api.assistant.batching import Batch, Batcher


def batcher() -> Batcher:
    return Batcher(max_deltas=64, interval_seconds=0.05)


def test_the_buffer_is_due_at_64_deltas() -> None:
    buffer = batcher()
    due = [buffer.add("x", now=0.0) for _ in range(64)]
    assert due == [False] * 63 + [True]
    assert buffer.take() == Batch(0, "x" * 64)
    assert not buffer.pending


def test_the_buffer_is_due_50_ms_after_its_first_delta() -> None:
    buffer = batcher()
    assert buffer.add("a", now=10.0) is False
    assert buffer.add("b", now=10.04) is False
    assert buffer.flush_at == 10.05
    assert not buffer.due(10.049)
    assert buffer.due(10.05)
    assert buffer.add("c", now=10.06) is True
    assert buffer.take() == Batch(0, "abc")


def test_the_interval_restarts_with_the_next_first_delta() -> None:
    buffer = batcher()
    buffer.add("a", now=0.0)
    buffer.take()
    assert buffer.flush_at is None
    buffer.add("b", now=5.0)
    assert buffer.flush_at == 5.05


def test_empty_deltas_are_ignored() -> None:
    buffer = batcher()
    assert buffer.add("", now=0.0) is False
    assert not buffer.pending and buffer.flush_at is None
    assert not buffer.due(100.0)
    assert buffer.take() is None
    for _ in range(63):
        buffer.add("y", now=0.0)
        buffer.add("", now=0.0)
    assert not buffer.due(0.0), "empty deltas do not count towards 64"


def test_idx_starts_at_zero_and_is_contiguous() -> None:
    buffer = batcher()
    taken = []
    for step in range(3):
        buffer.add(f"t{step}", now=float(step))
        taken.append(buffer.take())
    assert buffer.take() is None  # nothing buffered: no batch, no idx used
    buffer.add("end", now=9.0)
    taken.append(buffer.take())
    assert [batch.idx for batch in taken if batch] == [0, 1, 2, 3]
    assert buffer.next_idx == 4
