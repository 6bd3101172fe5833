"""Rate-limit DTOs and their checks (contract 8.1, 8.4, 8.8)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from threadline_shared.dto import (
    AssignRateLimitRequest,
    CreateRateLimitProfileRequest,
    GcraParams,
    RateLimitValidationError,
    UpdateRateLimitProfileRequest,
    normalise_assignment,
    validate_algorithm,
    validate_gcra_params,
    validate_profile_name,
)

PROFILE = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"


def _fields(error: RateLimitValidationError) -> list[str]:
    return [entry["field"] for entry in error.errors]


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("burst", "burst"),
        ("  search.heavy  ", "search.heavy"),
        ("n" * 64, "n" * 64),
        (" " + "n" * 64, "n" * 64),
    ],
)
def test_profile_name_is_trimmed(given: str, stored: str) -> None:
    assert validate_profile_name(given) == stored


@pytest.mark.parametrize("name", ["", "   ", "n" * 65, "default", "auth.login", " default ", 5, None])
def test_blank_long_reserved_or_non_string_profile_name_is_rejected(name: object) -> None:
    with pytest.raises(RateLimitValidationError) as caught:
        validate_profile_name(name)
    assert _fields(caught.value) == ["name"]


def test_reserved_names_are_matched_case_sensitively() -> None:
    assert validate_profile_name("Default") == "Default"


@pytest.mark.parametrize("algorithm", [None, "gcra"])
def test_algorithm_defaults_to_gcra(algorithm: str | None) -> None:
    assert validate_algorithm(algorithm) == "gcra"


@pytest.mark.parametrize("algorithm", ["GCRA", "token_bucket", "", 1])
def test_algorithm_other_than_gcra_is_rejected(algorithm: object) -> None:
    with pytest.raises(RateLimitValidationError) as caught:
        validate_algorithm(algorithm)
    assert _fields(caught.value) == ["algorithm"]


@pytest.mark.parametrize(
    "params",
    [
        {"requests_per_second": 5, "burst": 10},
        {"requests_per_second": 0.5, "burst": 1},
        {"requests_per_second": 10_000, "burst": 10_000},
        {"requests_per_second": 1e-9, "burst": 1},
        {"requests_per_second": 2, "burst": 3, "jitter": True},
    ],
)
def test_gcra_params_within_the_limits_are_accepted(params: dict[str, Any]) -> None:
    parsed = validate_gcra_params(params)
    assert (parsed.requests_per_second, parsed.burst) == (params["requests_per_second"], params["burst"])


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({"requests_per_second": 0, "burst": 1}, ["params.requests_per_second"]),
        ({"requests_per_second": -1, "burst": 1}, ["params.requests_per_second"]),
        ({"requests_per_second": 10_000.001, "burst": 1}, ["params.requests_per_second"]),
        ({"requests_per_second": math.nan, "burst": 1}, ["params.requests_per_second"]),
        ({"requests_per_second": math.inf, "burst": 1}, ["params.requests_per_second"]),
        ({"requests_per_second": True, "burst": 1}, ["params.requests_per_second"]),
        ({"requests_per_second": "5", "burst": 1}, ["params.requests_per_second"]),
        ({"requests_per_second": None, "burst": 1}, ["params.requests_per_second"]),
        ({"burst": 1}, ["params.requests_per_second"]),
        ({"requests_per_second": 1, "burst": 0}, ["params.burst"]),
        ({"requests_per_second": 1, "burst": 10_001}, ["params.burst"]),
        ({"requests_per_second": 1, "burst": 1.5}, ["params.burst"]),
        ({"requests_per_second": 1, "burst": 2.0}, ["params.burst"]),
        ({"requests_per_second": 1, "burst": True}, ["params.burst"]),
        ({"requests_per_second": 1, "burst": "10"}, ["params.burst"]),
        ({"requests_per_second": 1}, ["params.burst"]),
        ({}, ["params.requests_per_second", "params.burst"]),
    ],
)
def test_bad_gcra_params_name_the_offending_field(params: dict[str, Any], fields: list[str]) -> None:
    with pytest.raises(RateLimitValidationError) as caught:
        validate_gcra_params(params)
    assert _fields(caught.value) == fields


@pytest.mark.parametrize("params", [None, [], "fast", 5])
def test_params_that_are_not_an_object_are_rejected(params: object) -> None:
    with pytest.raises(RateLimitValidationError) as caught:
        validate_gcra_params(params)
    assert _fields(caught.value) == ["params"]


def test_validation_error_is_a_value_error_with_a_readable_message() -> None:
    with pytest.raises(ValueError, match=r"params\.burst: .*greater than or equal to 1"):
        validate_gcra_params({"requests_per_second": 1, "burst": 0})


def test_integer_rate_stays_an_integer() -> None:
    assert validate_gcra_params({"requests_per_second": 5, "burst": 10}).to_json() == (
        b'{"requests_per_second":5,"burst":10}'
    )


def test_gcra_interval_and_tolerance_follow_8_4() -> None:
    params = GcraParams(requests_per_second=5, burst=10)
    assert (params.emission_interval_ms, params.tolerance_ms) == (200, 1800)


@pytest.mark.parametrize(
    ("method", "path", "normalised"),
    [
        ("get", "api/conversations", ("GET", "/api/conversations")),
        ("Post", "/api/threads/{conversation_id}/root", ("POST", "/api/threads/{conversation_id}/root")),
        ("PUT", "/", ("PUT", "/")),
        ("patch", "*", ("PATCH", "/*")),
        ("delete", "/api/admin/*", ("DELETE", "/api/admin/*")),
        ("head", "/" + "p" * 511, ("HEAD", "/" + "p" * 511)),
        ("GET", "p" * 511, ("GET", "/" + "p" * 511)),
    ],
)
def test_assignment_is_normalised(method: str, path: str, normalised: tuple[str, str]) -> None:
    assert normalise_assignment(method, path) == normalised


@pytest.mark.parametrize("method", ["OPTIONS", "CONNECT", "TRACE", "", " GET", "GETS", None])
def test_assignment_method_outside_the_list_is_rejected(method: object) -> None:
    with pytest.raises(RateLimitValidationError) as caught:
        normalise_assignment(method, "/api/typing")
    assert _fields(caught.value) == ["method"]


@pytest.mark.parametrize(
    "path",
    ["", "/api/a b", "/api/\tx", "api/x\n", "/" + "p" * 512, "p" * 512, None, 7],
    ids=["empty", "space", "tab", "newline", "513-with-slash", "513-after-slash", "none", "int"],
)
def test_assignment_path_empty_with_whitespace_or_too_long_is_rejected(path: object) -> None:
    with pytest.raises(RateLimitValidationError) as caught:
        normalise_assignment("GET", path)
    assert _fields(caught.value) == ["path"]


def test_assignment_with_bad_method_and_path_reports_both() -> None:
    with pytest.raises(RateLimitValidationError) as caught:
        normalise_assignment("BREW", "")
    assert _fields(caught.value) == ["method", "path"]


def test_create_profile_request_leaves_name_algorithm_and_params_to_the_checks() -> None:
    body = {"name": "  ", "algorithm": "leaky", "params": {"burst": "lots"}}
    request = CreateRateLimitProfileRequest.model_validate(body)
    assert (request.name, request.algorithm, request.params) == ("  ", "leaky", {"burst": "lots"})


def test_update_profile_request_keeps_params_as_sent() -> None:
    params = {"requests_per_second": 0, "burst": -3}
    assert UpdateRateLimitProfileRequest.model_validate({"params": params}).params == params


def test_assign_request_leaves_method_and_path_to_the_checks() -> None:
    request = AssignRateLimitRequest.model_validate({"profile_id": PROFILE, "method": "brew", "path": "a b"})
    assert (request.method, request.path) == ("brew", "a b")
