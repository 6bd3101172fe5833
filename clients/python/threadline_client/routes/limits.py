"""Rate-limit profiles and route assignments (contract 8.8; global admins only)."""

from __future__ import annotations

from collections.abc import Mapping

from threadline_client.http import without_none
from threadline_client.routes.base import Id, RouteGroup, ident, parse, parse_list
from threadline_shared.dto import (
    RATE_LIMIT_ASSIGNMENT_LIST_ADAPTER,
    RATE_LIMIT_PROFILE_LIST_ADAPTER,
    RateLimitAssignment,
    RateLimitProfile,
)

GcraParamsInput = Mapping[str, int | float]
"""``{"requests_per_second": number, "burst": int}``."""

_PROFILES = "/api/admin/limits/profiles"
_ASSIGNMENTS = "/api/admin/limits/assignments"


class LimitRoutes(RouteGroup):
    async def rate_limit_profiles(self) -> list[RateLimitProfile]:
        """``GET /api/admin/limits/profiles``, by name."""
        return parse_list(RATE_LIMIT_PROFILE_LIST_ADAPTER, await self.session.request("GET", _PROFILES))

    async def create_rate_limit_profile(
        self, name: str, params: GcraParamsInput, *, description: str | None = None
    ) -> RateLimitProfile:
        """``POST /api/admin/limits/profiles`` (algorithm ``gcra``)."""
        body = without_none(name=name, algorithm="gcra", params=dict(params), description=description)
        return parse(RateLimitProfile, await self.session.request("POST", _PROFILES, json=body))

    async def update_rate_limit_profile(
        self, profile_id: Id, params: GcraParamsInput, *, description: str | None = None
    ) -> RateLimitProfile:
        """``PUT /api/admin/limits/profiles/{profile_id}``: replaces params and description."""
        body = without_none(params=dict(params), description=description)
        path = f"{_PROFILES}/{ident(profile_id)}"
        return parse(RateLimitProfile, await self.session.request("PUT", path, json=body))

    async def delete_rate_limit_profile(self, profile_id: Id) -> None:
        """``DELETE /api/admin/limits/profiles/{profile_id}`` (409 while assigned)."""
        await self.session.request("DELETE", f"{_PROFILES}/{ident(profile_id)}")

    async def rate_limit_assignments(self) -> list[RateLimitAssignment]:
        """``GET /api/admin/limits/assignments``, by method then path pattern."""
        response = await self.session.request("GET", _ASSIGNMENTS)
        return parse_list(RATE_LIMIT_ASSIGNMENT_LIST_ADAPTER, response)

    async def assign_rate_limit(self, profile_id: Id, method: str, path: str) -> RateLimitAssignment:
        """``POST /api/admin/limits/assignments``: route ``method path`` (a pattern, 8.3) to a profile."""
        body = {"profile_id": ident(profile_id), "method": method, "path": path}
        return parse(RateLimitAssignment, await self.session.request("POST", _ASSIGNMENTS, json=body))

    async def delete_rate_limit_assignment(self, assignment_id: Id) -> None:
        """``DELETE /api/admin/limits/assignments/{assignment_id}``."""
        await self.session.request("DELETE", f"{_ASSIGNMENTS}/{ident(assignment_id)}")
