"""The SSE wire format (contract 6.2): each event is one block, encoded once and shared by every connection.

Durable events carry ``id:`` (the conversation's sequence number); ephemeral ones do not. The envelope JSON is
written to the log by the api as single-line JSON, so it goes into ``data:`` as is.
"""

from __future__ import annotations

KEEPALIVE = b": keepalive\n\n"


def http_chunk(frame: bytes) -> bytes:
    """``frame`` as one HTTP/1.1 chunk of the chunked response, as uvicorn's ``send`` would write it: built
    once per event and shared by every connection it is written to directly. Never empty: an empty chunk
    would end the response."""
    if not frame:
        raise ValueError("an empty frame would end the response")
    return b"%x\r\n%b\r\n" % (len(frame), frame)


KEEPALIVE_CHUNK = http_chunk(KEEPALIVE)


def retry_frame(retry_ms: int) -> bytes:
    return b"retry: %d\n\n" % retry_ms


def durable_frame(seq: int, event_type: str, envelope: str) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (seq, event_type.encode(), envelope.encode())


def ephemeral_frame(event_type: str, envelope: bytes) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (event_type.encode(), envelope)
