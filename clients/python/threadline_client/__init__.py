"""Threadline's typed async client and the ``threadline`` command-line tool (see README "Use it")."""

from threadline_client.client import ThreadlineClient
from threadline_client.errors import (
    AccountDisabled,
    BadRequest,
    Conflict,
    ConnectionFailed,
    Forbidden,
    Gone,
    NotFound,
    PayloadTooLarge,
    ProblemError,
    RateLimited,
    ResyncRequired,
    ServerError,
    ThreadlineError,
    Unauthorized,
    UnexpectedResponse,
    UnsupportedMediaType,
    ValidationFailed,
)
from threadline_client.http import DEFAULT_URL
from threadline_client.stream import EventStream, ReceivedEvent, ReconnectPolicy, StreamState, StreamStatus

__all__ = [
    "DEFAULT_URL",
    "AccountDisabled",
    "BadRequest",
    "Conflict",
    "ConnectionFailed",
    "EventStream",
    "Forbidden",
    "Gone",
    "NotFound",
    "PayloadTooLarge",
    "ProblemError",
    "RateLimited",
    "ReceivedEvent",
    "ReconnectPolicy",
    "ResyncRequired",
    "ServerError",
    "StreamState",
    "StreamStatus",
    "ThreadlineClient",
    "ThreadlineError",
    "Unauthorized",
    "UnexpectedResponse",
    "UnsupportedMediaType",
    "ValidationFailed",
]
