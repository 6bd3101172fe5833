"""clients/web as files (contract 2.6): a page and its assets under /assets/, plain ES modules that load
without a build step, nothing inline (the edge's CSP forbids it), user text never parsed as HTML, and only
the public routes of the contract."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "clients" / "web"
MODULES = sorted((WEB / "assets" / "js").rglob("*.js"))

# Contract 2.2 without the admin routes: what any signed-in person's client may call.
PUBLIC_ROUTES = [
    "/api/setup",
    "/api/auth/register",
    "/api/auth/login",
    "/api/auth/refresh",
    "/api/auth/logout",
    "/api/auth/me",
    "/api/users",
    "/api/users/{}",
    "/api/conversations",
    "/api/conversations/{}",
    "/api/conversations/{}/participants",
    "/api/conversations/{}/participants/{}",
    "/api/conversations/{}/invites",
    "/api/invites/accept",
    "/api/invites/{}/revoke",
    "/api/conversations/{}/threads",
    "/api/conversations/{}/unread",
    "/api/threads/{}/root",
    "/api/messages/{}/reply",
    "/api/threads/{}/tree",
    "/api/threads/{}/read",
    "/api/messages/{}/chunks",
    "/api/messages/{}/edit",
    "/api/messages/{}/delete",
    "/api/messages/{}/restore",
    "/api/messages/{}/cancel",
    "/api/stream/conversations/{}",
    "/api/presence/heartbeat",
    "/api/typing",
    "/api/conversations/{}/presence",
]
ROUTE_PATTERNS = [re.compile("^" + re.escape(r).replace(r"\{\}", "[^/]+") + "$") for r in PUBLIC_ROUTES]


class PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline_script = ""
        self.in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self.in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self.in_script = False

    def handle_data(self, data: str) -> None:
        if self.in_script:
            self.inline_script += data.strip()


@pytest.fixture(scope="module")
def page() -> PageParser:
    parser = PageParser()
    parser.feed((WEB / "index.html").read_text())
    return parser


def test_the_page_loads_its_script_and_styles_from_assets(page: PageParser) -> None:
    scripts = [attrs for tag, attrs in page.tags if tag == "script"]
    assert scripts == [{"type": "module", "src": "/assets/js/main.js"}]
    links = [attrs["href"] for tag, attrs in page.tags if tag == "link"]
    assert "/assets/app.css" in links
    for url in [s["src"] for s in scripts] + links:
        assert url is not None and url.startswith("/assets/")
        assert (WEB / url.lstrip("/")).is_file(), url


def test_the_page_has_nothing_inline_that_the_csp_would_block(page: PageParser) -> None:
    assert page.inline_script == ""
    for tag, attrs in page.tags:
        assert tag != "style"
        assert "style" not in attrs, tag
        assert not any(name.startswith("on") for name in attrs), tag
    assert (WEB / "index.html").read_text().startswith("<!doctype html>")


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(WEB)))
def test_every_import_resolves_to_a_file(module: Path) -> None:
    for specifier in re.findall(r'^import .* from "([^"]+)";$', module.read_text(), flags=re.M):
        assert specifier.startswith("."), f"{specifier}: no bare imports without a build step"
        assert (module.parent / specifier).resolve().is_file(), specifier


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(WEB)))
def test_no_text_is_parsed_as_html_or_code(module: Path) -> None:
    source = module.read_text()
    for risky in (
        "innerHTML",
        "outerHTML =",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
    ):
        assert risky not in source, risky
    assert 'setAttribute("style"' not in source  # the CSP blocks inline styles


def test_the_page_calls_only_public_routes_of_the_contract() -> None:
    called = set()
    for module in MODULES:
        for literal in re.findall(r'[`"](/api/[^`"]*)[`"]', module.read_text()):
            called.add(re.sub(r"\$\{[^}]*\}", "X", literal).split("?")[0])
    assert len(called) >= 20
    for path in called:
        if path.endswith("/"):  # a prefix test, e.g. path.startswith("/api/auth/")
            assert any(route.startswith(path) for route in PUBLIC_ROUTES), path
        else:
            assert any(pattern.match(path) for pattern in ROUTE_PATTERNS), path
