"""Stream events (contract 6.2, 6.3, 6.6): envelopes, payloads and the discriminated union."""

from __future__ import annotations

import json
from typing import Any, get_args
from uuid import UUID

import orjson
import pytest
from pydantic import BaseModel, ValidationError

from threadline_shared.dto import (
    DURABLE_EVENT_TYPES,
    EPHEMERAL_EVENT_TYPES,
    STREAM_EVENT_ADAPTER,
    ChatDeltaChunk,
    ErrorEvent,
    EventType,
    MessageCreatedEvent,
    MessageDeltaEvent,
    MessageDoneEvent,
    StreamError,
    StreamEvent,
    ThreadNewEvent,
    TypingUpdateEvent,
    WireModel,
    is_durable,
)
from threadline_shared.dto import events as events_module

# The three `data:` lines of the wire-format example in contract 6.2, verbatim.
CONTRACT_SSE_DATA = {
    "message.created": '{"type":"message.created","payload":{"id":"0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80","root_id":"0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80","conversation_id":"7d9f1c2e-4b3a-4f6e-9a1b-2c3d4e5f6a7b","author_user_id":"3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b","role":"user","content":"hi","path":"m0193a5b27c1e7d3a9f213b4c5d6e7f80","depth":1,"created_at":"2025-03-08T14:30:00.123456Z","status":"complete"}}',  # noqa: E501
    "message.delta": '{"type":"message.delta","payload":{"id":"0193a5b2-7d05-7a11-8c3e-5f6a7b8c9d0e:0","object":"chat.completion.chunk","root_id":"0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80","message_id":"0193a5b2-7d05-7a11-8c3e-5f6a7b8c9d0e","conversation_id":"7d9f1c2e-4b3a-4f6e-9a1b-2c3d4e5f6a7b","parent_id":"0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80","depth":2,"idx":0,"choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"}}]}}',  # noqa: E501
    "typing.update": '{"type":"typing.update","payload":{"conversation_id":"7d9f1c2e-4b3a-4f6e-9a1b-2c3d4e5f6a7b","root_id":"0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80","user_id":"3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b","expires_at":"2025-03-08T14:30:05.000000Z"}}',  # noqa: E501
}
# The resync_required payload of contract 6.6, verbatim.
CONTRACT_RESYNC_PAYLOAD = (
    '{"code":"resync_required","message":"event history is no longer available; refetch state"}'
)

CONVERSATION = "7d9f1c2e-4b3a-4f6e-9a1b-2c3d4e5f6a7b"
ROOT = "0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80"
REPLY = "0193a5b2-7d05-7a11-8c3e-5f6a7b8c9d0e"
ALICE = "3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b"
BOB = "5b6c7d8e-9f00-4a1b-8c2d-3e4f5a6b7c8d"
T0 = "2025-03-08T14:30:00.123456Z"
T1 = "2025-03-08T14:30:02.654321Z"

ASSISTANT_REPLY = {
    "id": REPLY,
    "root_id": ROOT,
    "parent_id": ROOT,
    "conversation_id": CONVERSATION,
    "role": "assistant",
    "content": "Hello world",
    "path": "m0193a5b27c1e7d3a9f213b4c5d6e7f80.m0193a5b27d057a118c3e5f6a7b8c9d0e",
    "depth": 2,
    "created_at": T1,
    "status": "complete",
}

# One realistic envelope per event type (and per payload shape), in contract field order.
EVENT_EXAMPLES: list[dict[str, Any]] = [
    {
        "type": "thread.new",
        "payload": {
            "conversation_id": CONVERSATION,
            "root_id": ROOT,
            "summary": {
                "root_id": ROOT,
                "root_excerpt": "hi",
                "root_author": ALICE,
                "created_at": T0,
                "last_activity_at": T0,
                "message_count": 1,
                "participant_count": 2,
            },
        },
    },
    {"type": "thread.activity", "payload": {"root_id": ROOT, "last_activity_at": T1}},
    json.loads(CONTRACT_SSE_DATA["message.created"]),
    {"type": "message.updated", "payload": ASSISTANT_REPLY},
    json.loads(CONTRACT_SSE_DATA["message.delta"]),
    {
        "type": "message.delta",
        "payload": {
            "id": f"{REPLY}:1",
            "object": "chat.completion.chunk",
            "root_id": ROOT,
            "message_id": REPLY,
            "conversation_id": CONVERSATION,
            "parent_id": ROOT,
            "depth": 2,
            "idx": 1,
            "choices": [{"index": 0, "delta": {"content": " world"}}],
        },
    },
    {
        "type": "message.done",
        "payload": {
            "message_id": REPLY,
            "root_id": ROOT,
            "conversation_id": CONVERSATION,
            "finish_reason": "stop",
            "usage": {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4},
        },
    },
    {"type": "unread.update", "payload": {"root_id": ROOT, "unread": 7}},
    {
        "type": "membership.changed",
        "payload": {"conversation_id": CONVERSATION, "user_id": BOB, "role": "viewer", "action": "removed"},
    },
    {
        "type": "error",
        "payload": {
            "code": "assistant_timeout",
            "message": "Assistant generation timed out before completion.",
            "message_id": REPLY,
        },
    },
    {"type": "error", "payload": json.loads(CONTRACT_RESYNC_PAYLOAD)},
    {"type": "presence.update", "payload": {"user_id": ALICE, "status": "online", "last_seen_at": T0}},
    {"type": "presence.update", "payload": {"user_id": BOB, "status": "offline"}},
    json.loads(CONTRACT_SSE_DATA["typing.update"]),
    {"type": "typing.update", "payload": {"conversation_id": CONVERSATION, "user_id": BOB, "expires_at": T1}},
]


def _event_id(example: dict[str, Any]) -> str:
    return str(example["type"])


def _classes_in(value: object) -> set[type[BaseModel]]:
    if isinstance(value, BaseModel):
        found: set[type[BaseModel]] = {type(value)}
        for name in type(value).model_fields:
            found |= _classes_in(getattr(value, name))
        return found
    if isinstance(value, list):
        return set().union(*(_classes_in(item) for item in value)) if value else set()
    return set()


@pytest.mark.parametrize("event_type", sorted(CONTRACT_SSE_DATA))
def test_contract_sse_example_round_trips_exactly(event_type: str) -> None:
    data = CONTRACT_SSE_DATA[event_type]
    event = STREAM_EVENT_ADAPTER.validate_json(data)
    assert event.model_dump(mode="json") == json.loads(data)


@pytest.mark.parametrize("event_type", sorted(CONTRACT_SSE_DATA))
def test_contract_sse_example_is_written_byte_for_byte(event_type: str) -> None:
    data = CONTRACT_SSE_DATA[event_type]
    assert STREAM_EVENT_ADAPTER.validate_json(data).to_json() == data.encode()


def test_contract_resync_payload_is_what_resync_required_builds() -> None:
    assert StreamError.resync_required().to_json() == CONTRACT_RESYNC_PAYLOAD.encode()


@pytest.mark.parametrize("envelope", EVENT_EXAMPLES, ids=map(_event_id, EVENT_EXAMPLES))
def test_event_round_trips_to_the_same_dict(envelope: dict[str, Any]) -> None:
    assert STREAM_EVENT_ADAPTER.validate_python(envelope).to_wire() == envelope


@pytest.mark.parametrize("envelope", EVENT_EXAMPLES, ids=map(_event_id, EVENT_EXAMPLES))
def test_event_json_keeps_the_contract_field_order(envelope: dict[str, Any]) -> None:
    encoded = orjson.dumps(envelope)
    assert STREAM_EVENT_ADAPTER.validate_json(encoded).to_json() == encoded


@pytest.mark.parametrize("envelope", EVENT_EXAMPLES, ids=map(_event_id, EVENT_EXAMPLES))
def test_event_parses_to_the_envelope_of_its_type(envelope: dict[str, Any]) -> None:
    event = STREAM_EVENT_ADAPTER.validate_python(envelope)
    assert event.type == envelope["type"]
    assert isinstance(event.type, EventType)


def test_every_event_type_has_an_example() -> None:
    assert {example["type"] for example in EVENT_EXAMPLES} == set(EventType)


def test_every_event_model_is_exercised_by_an_example() -> None:
    covered = set().union(*(_classes_in(STREAM_EVENT_ADAPTER.validate_python(e)) for e in EVENT_EXAMPLES))
    event_models = {
        value
        for value in vars(events_module).values()
        if isinstance(value, type)
        and issubclass(value, WireModel)
        and value.__module__ == events_module.__name__
    }
    assert event_models - covered == set()


def test_stream_event_union_has_one_envelope_per_type() -> None:
    envelopes = get_args(get_args(StreamEvent)[0])
    assert sorted(envelope.model_fields["type"].default for envelope in envelopes) == sorted(EventType)


def test_durable_and_ephemeral_types_partition_the_event_types() -> None:
    assert DURABLE_EVENT_TYPES.isdisjoint(EPHEMERAL_EVENT_TYPES)
    assert DURABLE_EVENT_TYPES | EPHEMERAL_EVENT_TYPES == set(EventType)


def test_presence_and_typing_are_the_only_ephemeral_types() -> None:
    assert {EventType.PRESENCE_UPDATE, EventType.TYPING_UPDATE} == EPHEMERAL_EVENT_TYPES


def test_assistant_error_is_durable() -> None:
    event = STREAM_EVENT_ADAPTER.validate_python(EVENT_EXAMPLES[9])
    assert is_durable(event)


def test_resync_required_error_is_not_durable() -> None:
    assert not is_durable(ErrorEvent(payload=StreamError.resync_required()))


def test_typing_update_is_not_durable() -> None:
    assert not is_durable(STREAM_EVENT_ADAPTER.validate_json(CONTRACT_SSE_DATA["typing.update"]))


def test_unknown_event_type_is_rejected() -> None:
    with pytest.raises(ValidationError):
        STREAM_EVENT_ADAPTER.validate_python({"type": "message.exploded", "payload": {}})


def test_payload_of_another_type_is_rejected() -> None:
    with pytest.raises(ValidationError):
        STREAM_EVENT_ADAPTER.validate_python(
            {"type": "message.done", "payload": {"root_id": ROOT, "unread": 1}}
        )


def test_message_done_needs_all_three_usage_counts() -> None:
    done = json.loads(json.dumps(EVENT_EXAMPLES[6]))
    del done["payload"]["usage"]["total_tokens"]
    with pytest.raises(ValidationError):
        STREAM_EVENT_ADAPTER.validate_python(done)


def test_delta_object_must_be_chat_completion_chunk() -> None:
    delta = json.loads(CONTRACT_SSE_DATA["message.delta"])
    delta["payload"]["object"] = "chat.completion"
    with pytest.raises(ValidationError):
        STREAM_EVENT_ADAPTER.validate_python(delta)


def test_thread_new_keeps_a_null_root_author() -> None:
    thread_new = json.loads(json.dumps(EVENT_EXAMPLES[0]))
    thread_new["payload"]["summary"]["root_author"] = None
    written = STREAM_EVENT_ADAPTER.validate_python(thread_new).to_wire()
    assert written["payload"]["summary"]["root_author"] is None


def test_envelope_type_defaults_from_its_class() -> None:
    message = MessageCreatedEvent.model_validate(
        {"payload": json.loads(CONTRACT_SSE_DATA["message.created"])["payload"]}
    )
    assert message.to_wire()["type"] == "message.created"


def _flush(idx: int, content: str) -> ChatDeltaChunk:
    return ChatDeltaChunk.for_flush(
        message_id=UUID(REPLY),
        root_id=UUID(ROOT),
        conversation_id=UUID(CONVERSATION),
        parent_id=UUID(ROOT),
        depth=2,
        idx=idx,
        content=content,
    )


def test_first_flush_builds_the_contract_delta() -> None:
    assert (
        MessageDeltaEvent(payload=_flush(0, "Hello")).to_json() == CONTRACT_SSE_DATA["message.delta"].encode()
    )


def test_later_flush_omits_the_delta_role() -> None:
    assert _flush(3, "!").to_wire()["choices"] == [{"index": 0, "delta": {"content": "!"}}]


def test_flush_id_joins_message_id_and_idx() -> None:
    assert _flush(12, "x").id == f"{REPLY}:12"


@pytest.mark.parametrize("envelope_class", [ThreadNewEvent, MessageDoneEvent, TypingUpdateEvent])
def test_envelope_rejects_a_type_of_another_class(envelope_class: type[WireModel]) -> None:
    with pytest.raises(ValidationError):
        envelope_class.model_validate({"type": "unread.update", "payload": {"root_id": ROOT, "unread": 0}})
