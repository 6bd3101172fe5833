"""The posts' lean path: ``POST /api/threads/{conversation_id}/root`` and
``POST /api/messages/{parent_id}/reply`` answered below Starlette, with micro-batched I/O, because
posting is the busiest write of the api.

Measured (bench/api_posts.py, 32 clients, 2 api processes, once a post was one SQL statement): through
uvicorn's ASGI cycle, Starlette, the middleware, the route guard and the handler, a post cost the api about
1.6 ms of CPU, and the api was half of the machine's CPU at 626 posts/s. The lean path keeps the same rules
and shares the round trips the requests have in common: the posts that arrive in one loop turn are checked
as a batch, with one SQL query for their sessions, one rate-limit script call for their HTTP limits, and
(with limiting on) one query for the route's checks and one script call for their posting limits. The
posts are then made together, in one transaction (``tl_post_messages``, db migration 0003), and answered
when it commits: one commit and one round trip for the batch. Measured (bench/api_posts.py, 32 clients,
one batch at a time): posts/s went from 810-930 to 1,310-1,740, the api's CPU per post from 585-815 µs to
250-380 µs and PostgreSQL's from 1.27-1.76 ms to 0.8-1.0 ms. A post that would wait for another
transaction (its thread's or its conversation's row is locked, or the batch already posts into its
conversation) is left out of it and made on its own (``tl_post_message``), outside the batch, answered when
it ends, so that a post waiting for a lock holds back no other post's answer; a batch waits for any lock at
most ``post_batch_lock_wait_ms``, then rolls back and its posts are made one by one, as are those of a
batch the database refuses (any error that says it rolled back). Once the batch's transaction has ended,
one script call clears its authors' typing, in the background: the posts are answered before that, where
the full path answers after it (typing is ephemeral; measured, a clear per post, or per few posts, cost the
api 250-400 µs more per post). A post sent to the database is always answered from here (201, or 500 when
it failed and may have committed, as after a lost connection), never handed on to be made twice.

It takes only the plain case and answers it exactly as the full application would (same status, body,
headers, metrics and access-log line): a bearer token whose verification writes nothing, no ``Origin``, a
JSON body that parses into the route's request model, a post that every check allows. Anything else (a
cookie, a bad body, a 401/403/404/413/415/422/423/429, a session whose ``last_seen_at`` is due) goes to the
full application, which gives the one canonical answer. A refused post writes nothing, so the full path can
check it again; rate-limit decisions already made go with the request (``DECIDED``), and a posting-limit
denial changes no bucket, so nothing is charged twice. Every api test that posts with a bearer token runs
through this path (tests/support/api serves the api with its own protocol, as ``threadline-api`` does).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from functools import partial
from uuid import UUID

import asyncpg
import orjson
from prometheus_client import Counter
from pydantic import ValidationError
from redis.asyncio import Redis
from starlette.datastructures import State
from starlette.types import Scope

from threadline_api.messages.posting import BUSY, MAX_DEPTH, Post, Posted, post_message, post_messages
from threadline_shared.dto.base import parse_uuid
from threadline_shared.dto.messages import (
    PostRootMessageRequest,
    PostRootMessageResponse,
    ReplyMessageRequest,
    ReplyMessageResponse,
)
from threadline_shared.errors import ApiError, InternalError
from threadline_shared.leanpath import Response, plain_request
from threadline_shared.limiter import Decision, Limiter
from threadline_shared.microbatch import MicroBatcher
from threadline_shared.middleware import Headers, RequestRecord
from threadline_shared.presence.posting import clear_typing_after_posts
from threadline_shared.problem import problem_bytes
from threadline_shared.ratelimit.http import UNDECIDED, Undecided, decide_http_limits, hand_on_decision
from threadline_shared.ratelimit.rules import POSTING_PROFILE, RuleBook
from threadline_shared.sessions import SessionService, lookup_rows

log = logging.getLogger(__name__)

FAST_POSTS = Counter(
    "threadline_api_fast_posts_total",
    "Posts answered by the lean path (the others went through the full application)",
)
ROOT_ROUTE = "/api/threads/{conversation_id}/root"
REPLY_ROUTE = "/api/messages/{parent_id}/reply"
_ROOT_PATH = re.compile(r"/api/threads/([^/]+)/root")
_REPLY_PATH = re.compile(r"/api/messages/([^/]+)/reply")
MAX_BODY_BYTES = 16 * 1024
"""Larger bodies (long messages) go the full way."""
JSON = (b"content-type", b"application/json")
LOOKUP_TIMEOUT_SECONDS = 2.0
DECLINED = "threadline.post_declined"
"""Scope key set once the lean path has handed a request on, so that it is not tried twice."""


@dataclass(slots=True)
class Job:
    token: str
    path: str
    conversation_id: UUID | None  # a root's
    parent_id: UUID | None  # a reply's
    content: str
    role: str
    result: asyncio.Future[Outcome]
    sent: bool = False
    """Sent to the database: from then on answered here (201 or 500), never handed on to be made again."""


@dataclass(frozen=True, slots=True)
class Answer:
    """The response to a post tried here: its status, headers (before those of the request middleware) and
    body. A post that failed after it was sent to the database (it may have committed) is answered 500 here,
    as the full application would answer it, rather than handed on to be made twice."""

    status: int
    headers: Headers
    body: bytes


@dataclass(frozen=True, slots=True)
class Declined:
    """A post the full application answers, with the HTTP rate-limit decision made here (None: no limit, or
    failed open), if one was made."""

    decision: Decision | Undecided | None = UNDECIDED


@dataclass(frozen=True, slots=True)
class Cleared:
    """A post that passed the batch's checks: make it (its author, its HTTP rate-limit decision)."""

    author_id: UUID
    decision: Decision | None


Outcome = Answer | Declined


def target(scope: Scope) -> tuple[UUID | None, UUID | None] | None:
    """``(conversation_id, None)`` of a root post, ``(None, parent_id)`` of a reply, or None (not a post,
    or an id the full path refuses with 400)."""
    for pattern, is_root in ((_ROOT_PATH, True), (_REPLY_PATH, False)):
        match = pattern.fullmatch(scope["path"])
        if match is not None:
            try:
                target_id = parse_uuid(match[1])
            except ValueError:
                return None
            return (target_id, None) if is_root else (None, target_id)
    return None


def parse_post(body: bytes, is_root: bool) -> tuple[str, str] | None:
    """``(content, role)`` of a body the route accepts and can store; None = let the full application parse
    it (and answer 400/422)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    try:
        parsed = (PostRootMessageRequest if is_root else ReplyMessageRequest).model_validate(data)
    except ValidationError:
        return None
    if "\x00" in parsed.content:
        return None
    return parsed.content, parsed.role.value


class Posts:
    """The lean path's rules and batches, served below ASGI by
    :class:`threadline_api.protocol.ApiHttpProtocol`."""

    def __init__(self, service: str, app_state: State) -> None:
        """``app_state``: the application's state (its ``settings`` and ``clock``)."""
        self.app_state = app_state
        self.sessions: SessionService | None = None
        self.limiter: Limiter | None = None
        self.rules: RuleBook | None = None
        self.redis: Redis | None = None
        # Bodies the full path would refuse (413) or that are long go the full way.
        self.max_body_bytes = min(MAX_BODY_BYTES, app_state.settings.max_body_bytes)
        # A batch: its checks, then its posts in one transaction (one that would wait for another's lock
        # is made on its own, outside the batch, and holds back no other answer), then one script call for
        # the authors' typing. One batch at a time (see _check).
        self._checks: MicroBatcher[Job, None] = MicroBatcher(self._check, max_in_flight=1)
        self._background: set[asyncio.Task[None]] = set()  # posts made alone, typing clears
        self._records = {
            (route, status): RequestRecord(service, "POST", route, status)
            for route in (ROOT_ROUTE, REPLY_ROUTE)
            for status in (201, 500)
        }

    @property
    def waiting(self) -> int:
        """How many posts wait for a batch."""
        return self._checks.waiting

    @staticmethod
    def candidate(scope: Scope) -> bool:
        """Whether the lean path may look at the request (the rest always goes the full way)."""
        return (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and "state" in scope
            and DECLINED not in scope
            and scope["path"].endswith(("/root", "/reply"))
        )

    def submit(
        self, scope: Scope, token: str, job_target: tuple[UUID | None, UUID | None], body: bytes
    ) -> asyncio.Future[Answer | Declined] | None:
        """Queue the post for the next batch (read the future with :meth:`outcome`); None when its body is
        not for the lean path."""
        conversation_id, parent_id = job_target
        parsed = parse_post(body, parent_id is None)
        if parsed is None:
            return None
        state = scope["state"]
        if self.sessions is None or self.sessions.pool is not state["pool"]:  # first request, or new lifespan
            self.sessions = SessionService(state["pool"], self.app_state.settings, self.app_state.clock)
            self.limiter, self.rules, self.redis = state["limiter"], state["rules"], state["redis"]
        result: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        job = Job(token, scope["path"], conversation_id, parent_id, *parsed, result)
        self._checks.enqueue(job).add_done_callback(partial(_declined_if_failed, job))
        return result

    @staticmethod
    def outcome(scope: Scope, future: asyncio.Future[Answer | Declined]) -> Answer | None:
        """The answer from a done :meth:`submit` future, or None (and :data:`DECLINED` set) when the full
        application has to answer; a failed batch is such a case: the full path meets the same failure and
        answers it (503, ...)."""
        failed = future.cancelled() or future.exception() is not None
        result = Declined() if failed else future.result()
        if isinstance(result, Answer):
            return result
        scope[DECLINED] = True
        hand_on_decision(scope, result.decision)
        return None

    def begin(
        self, scope: Scope, body: bytes
    ) -> tuple[asyncio.Future[Answer | Declined], bytes | None] | None:
        """For :class:`~threadline_shared.leanpath.LeanHttpProtocol`: submit a plain post whose whole body is
        ``body``; None = the application answers."""
        plain = plain_request(scope, self.max_body_bytes)
        job_target = target(scope) if plain is not None else None
        if plain is None or job_target is None:
            return None
        future = self.submit(scope, plain[0], job_target, body)
        return None if future is None else (future, plain[1])

    def respond(self, scope: Scope, future: asyncio.Future[Outcome]) -> Response | None:
        answer = self.outcome(scope, future)
        return None if answer is None else (answer.status, answer.headers, answer.body)

    def finished(self, scope: Scope, response: Response, request_id: bytes, started: float) -> None:
        """Count and log a post answered here, as the full application's middleware would."""
        route = ROOT_ROUTE if scope["path"].endswith("/root") else REPLY_ROUTE
        status = response[0]
        self._records[route, status].finished(scope["path"], request_id, started)
        if status == 201:
            FAST_POSTS.inc()

    async def _check(self, jobs: Sequence[Job]) -> list[None]:
        """One batch: its checks, then its posts (made together), then its authors' typing.

        One batch at a time, until its transaction has ended (the posts it leaves out go on outside it):
        the posts that arrive meanwhile make the next batch larger, which shares its session query, its
        script calls and its commit among more posts. Measured (bench/api_posts.py, 24 clients, 2 api
        processes): with two batches in flight, 880-1,060 posts/s; with one, 1,160-1,280 posts/s, as
        batches were twice as large. And with a batch's place freed after its checks (before posts were
        made together), batches stayed small and a post cost the api about 200 µs more."""
        verdicts = await self._verdicts(jobs)  # a failure here (no decision yet) declines the whole batch
        cleared: list[tuple[Job, Cleared]] = []
        for job, verdict in zip(jobs, verdicts, strict=True):
            if isinstance(verdict, Declined):
                _settle(job.result, verdict)
            else:
                cleared.append((job, verdict))
        if cleared:
            await self._make_all(cleared)
        return [None] * len(jobs)

    async def _make_all(self, cleared: Sequence[tuple[Job, Cleared]]) -> None:
        """The batch's posts, made together in one transaction and answered when it ends; then their
        authors' typing is cleared in the background (the next batch need not wait for Redis). Those it
        leaves out, because they would wait for another transaction, are made on their own, outside the
        batch (:meth:`_make_alone`). A post sent to the database may have committed: from then on it is
        answered here, 201 or 500, never handed on."""
        made = await self._make_together(cleared)
        if made:
            typing = [(post.conversation_id, verdict.author_id) for post, verdict in made]
            self._in_background(self._clear_typing(typing))

    async def _make_together(self, cleared: Sequence[tuple[Job, Cleared]]) -> list[tuple[Posted, Cleared]]:
        """Make the posts in one transaction (``tl_post_messages``) and answer them; those it did not make
        (:data:`BUSY`), or all of them when the database rolled it back, are left to :meth:`_make_alone`.
        The posts made."""
        assert self.sessions is not None
        settings = self.app_state.settings
        posts = [
            Post(job.conversation_id, job.parent_id, verdict.author_id, job.content, job.role)
            for job, verdict in cleared
        ]
        for job, _ in cleared:
            job.sent = True
        try:
            outcomes = await post_messages(
                self.sessions.pool,
                posts,
                unread_fanout_max=settings.unread_fanout_max_participants,
                lock_wait_ms=settings.post_batch_lock_wait_ms,
            )
        except BaseException as exc:
            if isinstance(exc, asyncpg.PostgresError) and rolled_back(exc):  # no post was made
                log.info("posts made together rolled back (%s); each is made on its own", exc.sqlstate)
                for job, verdict in cleared:
                    self._make_alone(job, verdict)
                return []
            # Made or not is unknown (a lost connection): answered, never made twice.
            log.error("posts failed", exc_info=exc)
            for job, _ in cleared:
                _settle(job.result, Answer(*problem_bytes(InternalError())))
            if not isinstance(exc, Exception):
                raise
            return []
        made: list[tuple[Posted, Cleared]] = []
        alone: set[int] = set()  # the jobs (by id) made on their own, which answer themselves
        try:
            for (job, verdict), outcome in zip(cleared, outcomes, strict=True):
                if isinstance(outcome, Posted):
                    made.append((outcome, verdict))
                    _settle(job.result, _created(job, outcome, verdict.decision))
                elif outcome == BUSY:
                    alone.add(id(job))
                    self._make_alone(job, verdict)
                else:  # a refusal wrote nothing: the full application answers it
                    _settle(job.result, Declined(verdict.decision))
        except BaseException as exc:  # the others, made or not, are answered: never made twice
            log.error("posts made together not answered", exc_info=exc)
            for job, _ in cleared:
                if id(job) not in alone:
                    _settle(job.result, Answer(*problem_bytes(InternalError())))
            raise
        return made

    async def drain(self, seconds: float) -> None:
        """Before the pool and Redis close: wait up to ``seconds`` for the posts made on their own
        and the typing clears still running, then cancel the rest (a post cancelled after it was sent is
        answered 500: it may have committed)."""
        if not self._background:
            return
        _, pending = await asyncio.wait(set(self._background), timeout=seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def _make_alone(self, job: Job, verdict: Cleared) -> None:
        """Make the post on its own, in the background: it may wait for a lock, and the batches go on."""
        self._in_background(self._alone(job, verdict))

    def _in_background(self, work: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _alone(self, job: Job, verdict: Cleared) -> None:
        post = await self._make(job, verdict)
        if post is not None:
            await self._clear_typing([(post.conversation_id, verdict.author_id)])

    async def _clear_typing(self, made: list[tuple[UUID, UUID]]) -> None:
        assert self.redis is not None
        try:
            await clear_typing_after_posts(self.redis, made)  # logs a Redis failure itself
        except Exception:
            log.exception("typing not cleared after posts")

    async def _make(self, job: Job, cleared: Cleared) -> Posted | None:
        """Make the post on its own and answer it; the post, if made."""
        try:
            post = await self._post(job, cleared.author_id)
            if post is None:
                _settle(job.result, Declined(cleared.decision))
                return None
            _settle(job.result, _created(job, post, cleared.decision))
            return post
        except BaseException as exc:  # cancelled at shutdown included: answered, never handed on
            log.error("post failed", exc_info=exc)
            _settle(job.result, Answer(*problem_bytes(InternalError())))
            if not isinstance(exc, Exception):
                raise
            return None

    async def _verdicts(self, jobs: Sequence[Job]) -> list[Cleared | Declined]:
        """The sessions, the HTTP limits, then (limiting on) the route's checks and the posting limits. Only
        a failure before any decision fails the batch; later, every post is declined with its decision, so
        that the full path does not charge it again."""
        assert self.sessions is not None and self.rules is not None and self.limiter is not None
        async with asyncio.timeout(LOOKUP_TIMEOUT_SECONDS):  # else a stuck query would hold every post
            rows = await lookup_rows(self.sessions.pool, [job.token for job in jobs])
        verdicts: list[Cleared | Declined] = [Declined()] * len(jobs)
        users: dict[int, UUID] = {}  # job index -> author, for settled sessions
        for index, row in enumerate(rows):
            if self.sessions.settled(row):
                assert row is not None
                users[index] = row["user_id"]
        decisions = await decide_http_limits(  # fails open by itself
            self.rules,
            self.limiter,
            "POST",
            [(jobs[index].path, user_id) for index, user_id in users.items()],
        )
        passed: dict[int, Decision | None] = {}
        for index, decision in zip(users, decisions, strict=True):
            if decision is not None and not decision.allowed:
                verdicts[index] = Declined(decision)  # the full application answers the 429
            else:
                passed[index] = decision
        if self.limiter.enabled:
            try:
                passed = await self._posting_limits(jobs, users, passed, verdicts)
            except Exception:
                log.exception("lean path checks failed; the application answers")
                return [
                    Declined(passed.get(index)) if index in passed else v for index, v in enumerate(verdicts)
                ]
        for index, decision in passed.items():
            verdicts[index] = Cleared(users[index], decision)
        return verdicts

    async def _posting_limits(
        self,
        jobs: Sequence[Job],
        users: dict[int, UUID],
        passed: dict[int, Decision | None],
        answers: list[Cleared | Declined],
    ) -> dict[int, Decision | None]:
        """The posting limit comes after every other check of the route (8.7): those checks first (a refusal
        goes to the full path, which answers it), then one script call for the posts' buckets."""
        assert self.sessions is not None and self.rules is not None and self.limiter is not None
        conversations = await self._conversations(jobs, users, passed)
        allowed = {index: passed[index] for index in conversations}
        for index in passed.keys() - conversations.keys():
            answers[index] = Declined(passed[index])
        rate = self.rules.posting_rate()
        decisions = await self.limiter.check_many(
            [(POSTING_PROFILE, f"post:{conversations[i]}", f"u:{users[i]}", rate) for i in allowed]
        )
        for index, decision in zip(list(allowed), decisions, strict=True):
            if decision is not None and not decision.allowed:  # a denial changes no bucket: the full path
                answers[index] = Declined(allowed.pop(index))  # checks again and answers the 429
        return allowed

    async def _conversations(
        self, jobs: Sequence[Job], users: dict[int, UUID], passed: dict[int, Decision | None]
    ) -> dict[int, UUID]:
        """The conversation of each post that passes the route's checks (403/404/422 would not)."""
        assert self.sessions is not None
        pool = self.sessions.pool
        async with asyncio.timeout(LOOKUP_TIMEOUT_SECONDS):
            rows = await pool.fetch(
                _CHECKS,
                [jobs[i].conversation_id or jobs[i].parent_id for i in passed],
                [jobs[i].parent_id is not None for i in passed],
                [users[i] for i in passed],
            )
        found = {row["n"] - 1: row for row in rows}
        conversations: dict[int, UUID] = {}
        for position, index in enumerate(passed):
            row = found.get(position)
            if row is not None and row["role"] not in (None, "viewer") and row["depth"] < MAX_DEPTH:
                conversations[index] = row["conversation_id"]
        return conversations

    async def _post(self, job: Job, author_id: UUID) -> Posted | None:
        """The post, or None when the full application has to answer (a refusal, which wrote nothing)."""
        assert self.sessions is not None
        try:
            return await post_message(
                self.sessions.pool,
                conversation_id=job.conversation_id,
                parent_id=job.parent_id,
                author_id=author_id,
                content=job.content,
                role=job.role,
                unread_fanout_max=self.app_state.settings.unread_fanout_max_participants,
            )
        except ApiError:
            return None


# The route's checks for a batch of posts, by position: the conversation, the caller's role in it (NULL when
# not a participant) and the parent's depth (0 for a root). A reply to an unknown message has no row.
_CHECKS = """
SELECT r.n, t.conversation_id, p.role, t.depth
FROM unnest($1::uuid[], $2::boolean[], $3::uuid[]) WITH ORDINALITY AS r (target, is_reply, user_id, n)
CROSS JOIN LATERAL (
    SELECT m.conversation_id, m.depth FROM messages m WHERE r.is_reply AND m.id = r.target
    UNION ALL
    SELECT r.target, 0 WHERE NOT r.is_reply
    LIMIT 1
) t
LEFT JOIN participants p
       ON p.conversation_id = t.conversation_id AND p.user_id = r.user_id AND p.left_at IS NULL
"""


def rolled_back(error: asyncpg.PostgresError) -> bool:
    """Whether the database's ``error`` says that the statement's transaction rolled back: an error of the
    statement (data, constraints, deadlock or serialization, undefined objects, locks, resources, ...).
    Not so for a connection's or server's end (SQLSTATE classes 08, 57: a terminated backend may have
    committed before it said so; 58, XX: system and internal errors)."""
    return not str(error.sqlstate).startswith(("08", "57", "58", "XX"))


def _settle(result: asyncio.Future[Outcome], outcome: Outcome) -> None:
    if not result.done():
        result.set_result(outcome)


def _declined_if_failed(job: Job, checked: asyncio.Future[None]) -> None:
    """A batch that failed: its posts not yet sent to the database go to the full application (the others
    are answered where they were sent)."""
    if (checked.cancelled() or checked.exception() is not None) and not job.sent:
        _settle(job.result, Declined())


def _created(job: Job, post: Posted, decision: Decision | None) -> Answer:
    body = _body(job, post)
    limit = decision.header_pairs() if decision is not None else []
    return Answer(201, [(b"content-length", b"%d" % len(body)), JSON, *limit], body)


def _body(job: Job, post: Posted) -> bytes:
    if job.parent_id is None:
        return PostRootMessageResponse(
            message_id=post.message_id, root_id=post.message_id, conversation_id=post.conversation_id, depth=1
        ).to_json()
    return ReplyMessageResponse(
        message_id=post.message_id,
        root_id=post.root_id,
        conversation_id=post.conversation_id,
        parent_id=job.parent_id,
        depth=post.depth,
    ).to_json()
