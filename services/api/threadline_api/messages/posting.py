"""Posting a root or a reply (contract 5.3, 6.5, 9.1) in one round trip: the database's ``tl_post_message``
(db migration 0002) runs the route's access checks, then writes the message, the thread summary, the
author's watermark, the durable events in the contract's order, the doorbell and the assistant job when one
is due, as one statement in its own transaction.

Why in the database: each round trip of a post cost the api about 0.2 ms of CPU (bench/api_posts.py, most of
it the kernel's loopback work), and a post had six besides the session's. The event envelopes are built
there too, in the form the DTOs of :mod:`threadline_shared.dto.events` write
(tests/api/test_messages_post_function.py holds the two to the same JSON)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from threadline_api.messages.access import MESSAGE_NOT_FOUND, NOT_PARTICIPANT, VIEWERS_CANNOT_WRITE
from threadline_api.messages.views import excerpt
from threadline_shared.db import Conn
from threadline_shared.errors import ApiError, Forbidden, NotFound, ValidationFailed
from threadline_shared.eventlog import EVENTS_CHANNEL
from threadline_shared.ids import path_label, uuid7

MAX_DEPTH = 64
JOBS_CHANNEL = "tl_jobs"
TOO_DEEP = f"a thread is at most {MAX_DEPTH} levels deep"

_POST = "SELECT * FROM tl_post_message($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
_POST_MANY = "SELECT * FROM tl_post_messages($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
BUSY = "busy"
"""``tl_post_messages``' outcome for a post it did not make, so as not to wait for another transaction: the
caller makes it on its own (:func:`post_message`)."""


@dataclass(frozen=True, slots=True)
class Post:
    """A post to make: a root into ``conversation_id`` (``parent_id`` None) or a reply to ``parent_id``
    (``conversation_id`` None)."""

    conversation_id: UUID | None
    parent_id: UUID | None
    author_id: UUID
    content: str
    role: str


@dataclass(frozen=True, slots=True)
class Posted:
    message_id: UUID
    conversation_id: UUID
    root_id: UUID
    depth: int
    job_id: UUID | None


def refusal(outcome: str) -> ApiError:
    """The error of a refused post, by ``tl_post_message``'s outcome."""
    if outcome == "message_not_found":
        return NotFound(MESSAGE_NOT_FOUND)
    if outcome == "not_participant":
        return Forbidden(NOT_PARTICIPANT)
    if outcome == "viewer":
        return Forbidden(VIEWERS_CANNOT_WRITE)
    if outcome == "too_deep":
        return ValidationFailed.for_field("parent_id", TOO_DEEP)
    raise RuntimeError(f"tl_post_message answered {outcome!r}")


async def post_message(
    conn: Conn | asyncpg.Pool,
    *,
    conversation_id: UUID | None,
    parent_id: UUID | None,
    author_id: UUID,
    content: str,
    role: str,
    unread_fanout_max: int,
) -> Posted:
    """Post a root into ``conversation_id`` (``parent_id`` None) or a reply to ``parent_id``
    (``conversation_id`` None). Raises the first refusal of the route's checks (404 unknown parent, 403 not a
    participant, 403 viewer, 422 too deep); a refused post writes nothing."""
    message_id = uuid7()
    row = await conn.fetchrow(
        _POST,
        message_id, conversation_id, parent_id, author_id, role, content, path_label(message_id),
        excerpt(content, False) if parent_id is None else None,
        MAX_DEPTH, unread_fanout_max, EVENTS_CHANNEL, JOBS_CHANNEL,
    )  # fmt: skip
    assert row is not None  # the function always answers one row
    if row["outcome"] != "ok":
        raise refusal(row["outcome"])
    return _posted(message_id, row)


def _posted(message_id: UUID, row: asyncpg.Record) -> Posted:
    return Posted(message_id, row["in_conversation"], row["in_thread"], row["at_depth"], row["assistant_job"])


async def post_messages(
    conn: Conn | asyncpg.Pool, posts: Sequence[Post], *, unread_fanout_max: int, lock_wait_ms: int | None
) -> list[Posted | str]:
    """Make ``posts`` in one transaction (``tl_post_messages``, db migration 0003): for each, the post made,
    or the outcome of one not made: a refusal (as :func:`refusal` reads it; it wrote nothing) or
    :data:`BUSY` (it would have waited for another transaction; make it with :func:`post_message`).

    ``lock_wait_ms`` bounds every lock wait (None: no bound); a longer one fails the transaction with
    ``asyncpg.LockNotAvailableError``. An error of the statement (see
    :func:`threadline_api.messages.fastpath.rolled_back`) means the transaction rolled back: none of the posts
    was made. Any other failure (a lost connection) leaves it unknown whether they were."""
    ids = [uuid7() for _ in posts]
    rows = await conn.fetch(
        _POST_MANY,
        ids, [post.conversation_id for post in posts], [post.parent_id for post in posts],
        [post.author_id for post in posts], [post.role for post in posts], [post.content for post in posts],
        [path_label(message_id) for message_id in ids],
        [excerpt(post.content, False) if post.parent_id is None else None for post in posts],
        MAX_DEPTH, unread_fanout_max, EVENTS_CHANNEL, JOBS_CHANNEL, lock_wait_ms,
    )  # fmt: skip
    outcomes: list[Posted | str | None] = [None] * len(posts)
    for row in rows:
        index = row["n"] - 1
        outcomes[index] = _posted(ids[index], row) if row["outcome"] == "ok" else row["outcome"]
    if any(outcome is None for outcome in outcomes):
        raise RuntimeError(f"tl_post_messages answered {len(rows)} rows for {len(posts)} posts")
    return [outcome for outcome in outcomes if outcome is not None]
