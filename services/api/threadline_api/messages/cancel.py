"""Cancelling an assistant reply (contract 9.7): ``POST /api/messages/{message_id}/cancel``.

Checks in order: the message exists (404), the caller is a participant (403) and a writer (403), the message
has role ``assistant`` (400 ``RGP.V1.CANCEL_ROLE``). Then the answer is always ``202 {message_id, status}``:

| message state                                  | status        | effect                                   |
|------------------------------------------------|---------------|------------------------------------------|
| ``streaming``                                  | ``cancelled`` | job's cancel flag + ``NOTIFY tl_cancel`` |
| ``cancelled``                                  | ``cancelled`` | none                                     |
| ``failed`` with ``finish_reason: timeout``     | ``timed_out`` | none                                     |
| ``complete``, or ``failed`` with ``error``     | ``completed`` | none                                     |
| posted by a user (no job)                      | ``not_tracked`` | none                                   |

The message row is locked while the state is read and the flag set, and the worker's finish transaction
locks the same row first and reads the flag after: so a ``cancelled`` answer is always followed by a reply
that finishes as cancelled.
"""

from __future__ import annotations

from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from threadline_api.messages.access import message_and_membership, require_writer
from threadline_shared.auth import principal_of
from threadline_shared.db import Conn
from threadline_shared.dto.enums import CancelStatus
from threadline_shared.dto.messages import CancelResponse
from threadline_shared.errors import CancelRoleInvalid
from threadline_shared.params import path_uuid
from threadline_shared.responses import model_response
from threadline_shared.routes import ApiRoute, Doc

CANCEL_CHANNEL = "tl_cancel"

_STATE = """
SELECT m.status, m.finish_reason, j.id AS job_id
FROM messages m LEFT JOIN assistant_jobs j ON j.assistant_message_id = m.id
WHERE m.id = $1
FOR UPDATE OF m
"""


async def request_cancel(conn: Conn, message_id: UUID) -> CancelStatus:
    """Read the reply's state and, while it streams, set its job's cancel flag. Run inside a transaction."""
    state = await conn.fetchrow(_STATE, message_id)
    assert state is not None  # messages are never removed
    if state["job_id"] is None:
        return CancelStatus.NOT_TRACKED
    match state["status"]:
        case "streaming":
            await conn.execute(
                "UPDATE assistant_jobs SET cancel_requested = true WHERE id = $1", state["job_id"]
            )
            await conn.execute("SELECT pg_notify($1, $2)", CANCEL_CHANNEL, str(message_id))
            return CancelStatus.CANCELLED
        case "cancelled":
            return CancelStatus.CANCELLED
        case "failed" if state["finish_reason"] == "timeout":
            return CancelStatus.TIMED_OUT
        case _:
            return CancelStatus.COMPLETED


async def cancel(request: Request) -> Response:
    message_id = path_uuid(request, "message_id")
    principal = principal_of(request)
    pool = request.state.pool
    message, membership = await message_and_membership(pool, message_id, principal.user_id)
    require_writer(membership)
    if message["role"] != "assistant":
        raise CancelRoleInvalid()
    async with pool.acquire() as conn, conn.transaction():
        status = await request_cancel(conn, message_id)
    return model_response(CancelResponse(message_id=message_id, status=status), 202)


def routes() -> list[BaseRoute]:
    doc = Doc(
        "Cancel an assistant reply",
        responses={202: CancelResponse},
        auth=True,
        csrf=True,
        tags=("messages",),
    )
    return [ApiRoute("/api/messages/{message_id}/cancel", cancel, methods=["POST"], doc=doc)]
