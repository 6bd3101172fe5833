"""Request ids made for requests that brought none are version-4 UUIDs (contract 2.2), each new."""

from __future__ import annotations

import uuid

from threadline_shared.middleware import new_request_id


def test_new_request_ids_are_distinct_version_4_uuids_in_canonical_form() -> None:
    ids = [new_request_id().decode() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)
