"""Route patterns of rate-limit assignments (contract 8.3), table-driven."""

from __future__ import annotations

import pytest

from threadline_shared.ratelimit.patterns import PathPattern, best_match
from threadline_shared.ratelimit.rules import Assignment, Rules


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/api/users", "/api/users", True),
        ("/api/users", "/api/Users", False),
        ("/api/users", "/api/users/", True),
        ("/api/users/", "/api/users", True),
        ("/api/users", "/api/users/x", False),
        ("/api/users/:id", "/api/users/42", True),
        ("/api/users/{id}", "/api/users/42", True),
        ("/api/users/*", "/api/users", True),
        ("/api/users/:id", "/api/users", False),
        ("/api/users/:id", "/api/users//", False),
        ("/api/*/threads", "/api/c1/threads", True),
        ("/api/admin/*", "/api/admin", True),
        ("/api/admin/*", "/api/admin/limits/profiles", True),
        ("/api/admin/*", "/api/administrator", False),
        ("/api/:a/*", "/api/x", True),
        ("/api/:a/*", "/api", False),
        ("*", "/anything/at/all", True),
        ("*", "/", True),
        ("/", "/", True),
        ("/", "/api", False),
    ],
)
def test_pattern_matching(pattern: str, path: str, matches: bool) -> None:
    assert PathPattern(pattern).matches(path) is matches


@pytest.mark.parametrize(
    ("patterns", "path", "winner"),
    [
        (["/api/*", "/api/users/:id", "/api/users/me"], "/api/users/me", "/api/users/me"),
        (["/api/*", "/api/users/:id"], "/api/users/7", "/api/users/:id"),
        (["/api/users/*", "/api/users/:id"], "/api/users/7", "/api/users/:id"),
        (["*", "/api/:x"], "/api/users", "/api/:x"),
        (["*", "/api/*"], "/api/users", "/api/*"),
        (["/api/:b/x", "/api/:a/x"], "/api/q/x", "/api/:a/x"),
        (["/api/*", "*"], "/other", "*"),
    ],
)
def test_the_best_match_wins(patterns: list[str], path: str, winner: str) -> None:
    best = best_match([PathPattern(p) for p in patterns], path)
    assert best is not None and best.text == winner


def test_no_pattern_matches() -> None:
    assert best_match([PathPattern("/api/users")], "/api/threads") is None


def test_methods_must_be_equal_and_head_is_not_get() -> None:
    rules = Rules(
        profiles={},
        assignments={"GET": [Assignment("GET", PathPattern("/api/users"), "reads")]},
    )
    assert rules.assignment_for("GET", "/api/users") is not None
    assert rules.assignment_for("HEAD", "/api/users") is None
    assert rules.assignment_for("POST", "/api/users") is None
