"""A stand-in for a stream's socket writer (``Connection.direct``) in the streamer's unit tests: it records
what it is given, and declines everything while ``accepting`` is False, as the real writer does while the
socket has unsent bytes."""

from __future__ import annotations


class Socket:
    def __init__(self) -> None:
        self.accepting = True
        self.written: list[bytes] = []

    def write(self, chunk: bytes) -> bool:
        if self.accepting:
            self.written.append(chunk)
        return self.accepting
