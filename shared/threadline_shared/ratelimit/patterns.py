"""Route patterns of rate-limit assignments (contract 8.3).

- A trailing ``/`` is ignored on pattern and path (except the path ``/``). The pattern ``*`` matches every
  path.
- Segments are split on ``/``. A pattern segment ``*``, ``:name`` or ``{name}`` matches any one non-empty
  segment; any other segment must match exactly (case-sensitive).
- A pattern ending in ``/*`` matches its leading segments plus zero or more segments.
- Other patterns match only paths with the same number of segments.
- Several matches: most literal segments wins; on a tie a pattern not ending in ``/*`` (and not ``*``) wins;
  then the pattern that sorts first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property


def _trim(path: str) -> str:
    return path.rstrip("/") or "/" if path != "/" else "/"


def _segments(path: str) -> list[str]:
    trimmed = _trim(path)
    return [] if trimmed == "/" else trimmed.lstrip("/").split("/")


def _is_wildcard(segment: str) -> bool:
    return segment == "*" or segment.startswith(":") or (segment.startswith("{") and segment.endswith("}"))


@dataclass(frozen=True)
class PathPattern:
    text: str

    @cached_property
    def match_all(self) -> bool:
        return self.text.strip() == "*"

    @cached_property
    def prefix(self) -> bool:
        """Ends in ``/*``: leading segments plus zero or more."""
        return not self.match_all and _trim(self.text).endswith("/*")

    @cached_property
    def segments(self) -> list[str]:
        segments = _segments(self.text)
        return segments[:-1] if self.prefix else segments

    @cached_property
    def literal_count(self) -> int:
        return 0 if self.match_all else sum(1 for segment in self.segments if not _is_wildcard(segment))

    def matches(self, path: str) -> bool:
        if self.match_all:
            return True
        parts = _segments(path)
        if self.prefix:
            if len(parts) < len(self.segments):
                return False
        elif len(parts) != len(self.segments):
            return False
        for expected, actual in zip(self.segments, parts, strict=False):
            if _is_wildcard(expected):
                if not actual:
                    return False
            elif expected != actual:
                return False
        return True

    def rank(self) -> tuple[int, int, str]:
        """Smaller is better: more literal segments, then exact over prefix/``*``, then sort order."""
        exact = 0 if not (self.prefix or self.match_all) else 1
        return (-self.literal_count, exact, self.text)


def best_match(patterns: Iterable[PathPattern], path: str) -> PathPattern | None:
    candidates = [pattern for pattern in patterns if pattern.matches(path)]
    return min(candidates, key=PathPattern.rank, default=None)
