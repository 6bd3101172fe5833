"""The two edge configurations in deploy/ against contract 2.3, without running nginx or Caddy.

Both files are parsed into blocks and directives. Each location's upstream and directives are checked, and
then a table of request paths is routed through a model of each server's matching rules (nginx: exact,
longest prefix, ``^~``, regexes in order, and the automatic 301 of slash-terminated proxy prefixes; Caddy:
named matchers over ``path``/``path_regexp``/``not``), so both configurations are shown to route every
path of the table identically.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
CADDYFILE = ROOT / "deploy" / "Caddyfile"
COMPOSE_FILE = ROOT / "compose.yaml"

SERVICE_PORTS = {"api": 8000, "streamer": 8001, "presence": 8002}
EDGE_PORT = 8080
BODY_LIMIT = 65536  # THREADLINE_MAX_BODY_BYTES default (contract 10)
WEB_ROOT = "/usr/share/nginx/html"
PRESENCE_REGEX = "^/api/conversations/[^/]+/presence$"

# Contract 2.3: nginx location (modifier, pattern) -> service.
CONTRACT_LOCATIONS = {
    ("^~", "/api/stream/"): "streamer",
    ("^~", "/api/presence/"): "presence",
    ("=", "/api/typing"): "presence",
    ("~", PRESENCE_REGEX): "presence",
    ("", "/api/"): "api",
}
STREAM_DIRECTIVES = {
    "proxy_buffering": ["off"],
    "proxy_cache": ["off"],
    "proxy_http_version": ["1.1"],
    "proxy_read_timeout": ["3600s"],
}

CID = "0190f3c2-7a4b-7c1d-9e2f-0123456789ab"
# Request path -> where the edge sends it: a service, the web client ("web") or "404".
ROUTES = {
    f"/api/stream/conversations/{CID}": "streamer",
    "/api/stream/": "streamer",
    "/api/presence/heartbeat": "presence",
    "/api/typing": "presence",
    f"/api/conversations/{CID}/presence": "presence",
    f"/api/conversations/{CID}/presence/": "api",
    f"/api/conversations/{CID}/presence/x": "api",
    f"/api/conversations/{CID}/x/presence": "api",
    f"/api/conversations/{CID}": "api",
    f"/api/conversations/{CID}/threads": "api",
    f"/api/conversations/{CID}/participants": "api",
    "/api/conversations": "api",
    "/api/typing/x": "api",
    "/api/typingx": "api",
    "/api/stream": "api",
    "/api/streams": "api",
    "/api/presence": "api",
    "/api/presences/heartbeat": "api",
    "/api/auth/login": "api",
    "/api/setup": "api",
    f"/api/threads/{CID}/tree": "api",
    "/api/admin/limits/profiles": "api",
    "/api/": "api",
    "/api": "404",
    "/apis/x": "404",
    "/": "web",
    "/assets/app.js": "web",
    "/assets/css/app.css": "web",
    "/assets": "404",
    "/index.html": "404",
    "/favicon.ico": "404",
    "/healthz": "404",
    "/readyz": "404",
    "/metrics": "404",
    "/openapi.json": "404",
    "/stream/conversations/x": "404",
}


# ----------------------------------------------------------------------------------------------- nginx


@dataclass
class Directive:
    name: str
    args: list[str]
    block: list[Directive] | None = None

    def children(self, name: str) -> list[Directive]:
        return [d for d in self.block or [] if d.name == name]

    def child(self, name: str) -> Directive:
        found = self.children(name)
        assert len(found) == 1, f"expected one {name} in {self.name} {self.args}, found {len(found)}"
        return found[0]


def nginx_tokens(text: str) -> list[tuple[bool, str]]:
    """(is_structure, text) pairs: `{`, `}` and `;` are structure; words and quoted strings are not."""
    tokens: list[tuple[bool, str]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif c in "{};":
            tokens.append((True, c))
            i += 1
        elif c in "\"'":
            j, value = i + 1, []
            while text[j] != c:
                if text[j] == "\\":
                    j += 1
                value.append(text[j])
                j += 1
            tokens.append((False, "".join(value)))
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in "{};":
                j += 1
            tokens.append((False, text[i:j]))
            i = j
    return tokens


def parse_nginx(text: str) -> Directive:
    tokens = iter(nginx_tokens(text))

    def block(closed_by_brace: bool) -> list[Directive]:
        directives: list[Directive] = []
        words: list[str] = []
        for is_structure, token in tokens:
            if not is_structure:
                words.append(token)
            elif token == ";":
                assert words, "empty directive"
                directives.append(Directive(words[0], words[1:]))
                words = []
            elif token == "{":
                assert words, "block without a name"
                directives.append(Directive(words[0], words[1:], block(closed_by_brace=True)))
                words = []
            else:
                assert closed_by_brace and not words, f"unbalanced }} after {words}"
                return directives
        assert not closed_by_brace and not words, "unterminated block or directive"
        return directives

    return Directive("main", [], block(closed_by_brace=False))


@pytest.fixture(scope="module")
def nginx() -> Directive:
    return parse_nginx(NGINX_CONF.read_text())


@pytest.fixture(scope="module")
def server(nginx: Directive) -> Directive:
    return nginx.child("http").child("server")


def location_key(location: Directive) -> tuple[str, str]:
    return (location.args[0], location.args[1]) if len(location.args) == 2 else ("", location.args[0])


def locations(server: Directive) -> dict[tuple[str, str], Directive]:
    found = {location_key(d): d for d in server.children("location")}
    assert len(found) == len(server.children("location")), "duplicate location"
    return found


def effective(name: str, *levels: Directive) -> list[list[str]]:
    """A directive's values as nginx inherits them: the innermost level that sets it wins whole."""
    for level in reversed(levels):
        found = level.children(name)
        if found:
            return [d.args for d in found]
    return []


def upstream_targets(nginx: Directive) -> dict[str, tuple[str, int]]:
    targets = {}
    for upstream in nginx.child("http").children("upstream"):
        servers = upstream.children("server")
        assert len(servers) == 1, f"upstream {upstream.args[0]} should name one service"
        host, _, port = servers[0].args[0].partition(":")
        targets[upstream.args[0]] = (host, int(port))
    return targets


def nginx_outcome(nginx: Directive, location: Directive) -> str:
    if location.children("proxy_pass"):
        url = location.child("proxy_pass").args[0]
        match = re.fullmatch(r"http://([\w.-]+)", url)
        assert match, f"proxy_pass {url} should name an upstream and no URI part"
        host, port = upstream_targets(nginx)[match.group(1)]
        assert SERVICE_PORTS[host] == port, f"{host} listens on {SERVICE_PORTS[host]}, not {port}"
        return host
    if location.children("return"):
        return location.child("return").args[0]
    if location.children("try_files"):
        assert location.child("try_files").args[-1] == "=404"
        return "web"
    raise AssertionError(f"location {location.args} neither proxies, returns nor serves files")


def nginx_route(nginx: Directive, server: Directive, uri: str) -> str:
    """nginx's location selection (ngx_http_core_find_location) for one normalised URI."""
    by_key = locations(server)
    for (modifier, pattern), location in by_key.items():
        if modifier == "=" and pattern == uri:
            return nginx_outcome(nginx, location)
    prefixes = [(p, m, loc) for (m, p), loc in by_key.items() if m in {"", "^~"} and uri.startswith(p)]
    longest = max(prefixes, key=lambda item: len(item[0]), default=None)
    if longest is None or longest[1] != "^~":
        for location in server.children("location"):
            modifier, pattern = location_key(location)
            if modifier in {"~", "~*"} and re.search(pattern, uri, re.IGNORECASE if modifier == "~*" else 0):
                return nginx_outcome(nginx, location)
    if longest is None:
        return "404"
    # A slash-terminated prefix location that proxies answers its slash-less form with a 301.
    for (modifier, pattern), location in by_key.items():
        if modifier in {"", "^~"} and pattern.endswith("/") and pattern[:-1] == uri:
            if location.children("proxy_pass"):
                return "301"
    return nginx_outcome(nginx, longest[2])


def test_nginx_has_events_and_one_http_server_on_8080(nginx: Directive, server: Directive) -> None:
    assert nginx.children("events")
    assert len(nginx.child("http").children("server")) == 1
    listens = [d.args for d in server.children("listen")]
    assert [args[0] for args in listens] == [str(EDGE_PORT)]


@pytest.mark.parametrize(("key", "service"), CONTRACT_LOCATIONS.items(), ids=lambda v: str(v))
def test_nginx_contract_location_proxies_to_its_service(
    nginx: Directive, server: Directive, key: tuple[str, str], service: str
) -> None:
    found = locations(server)
    assert key in found, f"no `location {' '.join(key).strip()}`"
    assert nginx_outcome(nginx, found[key]) == service


def test_nginx_stream_location_is_unbuffered_and_long_lived(server: Directive) -> None:
    stream = locations(server)[("^~", "/api/stream/")]
    for name, args in STREAM_DIRECTIVES.items():
        assert [d.args for d in stream.children(name)] == [args], name
    headers = {args[0].lower(): args[1] for args in (d.args for d in stream.children("proxy_set_header"))}
    assert headers.get("connection") == ""


def test_nginx_forwards_client_ip_and_request_id_on_every_proxied_location(
    nginx: Directive, server: Directive
) -> None:
    http = nginx.child("http")
    proxied = [loc for loc in server.children("location") if loc.children("proxy_pass")]
    assert len(proxied) >= len(CONTRACT_LOCATIONS)
    for location in proxied:
        assert effective("proxy_pass_request_headers", http, server, location) in ([], [["on"]])
        headers = {args[0].lower(): args[1] for args in effective("proxy_set_header", http, server, location)}
        assert headers.get("x-real-ip") == "$remote_addr", location.args
        # Not set (nginx passes request headers as they are) or set to the client's own value.
        assert headers.get("x-request-id", "$http_x_request_id") == "$http_x_request_id", location.args
        # HTTP/1.1 with an empty Connection header: needed by the keepalive pools (and by SSE).
        assert effective("proxy_http_version", http, server, location) == [["1.1"]], location.args
        assert headers.get("connection") == "", location.args


def test_nginx_upstreams(nginx: Directive) -> None:
    upstreams = {u.args[0]: u for u in nginx.child("http").children("upstream")}
    targets = upstream_targets(nginx)
    assert {host for host, _ in targets.values()} == set(SERVICE_PORTS)
    for name, (host, _) in targets.items():
        keepalive = upstreams[name].children("keepalive")
        if host == "streamer":
            continue
        assert keepalive and int(keepalive[0].args[0]) > 0, f"upstream {name} has no keepalive pool"


def test_nginx_upstreams_match_the_compose_services() -> None:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    nginx = parse_nginx(NGINX_CONF.read_text())
    for host, port in upstream_targets(nginx).values():
        assert host in compose["services"]
        assert compose["services"][host]["environment"]["THREADLINE_PORT"] == str(port)


def size_in_bytes(value: str) -> int:
    match = re.fullmatch(r"(\d+)([kKmMgG]?)", value)
    assert match, value
    return int(match.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[match.group(2).lower()]


def test_nginx_allows_bodies_up_to_the_service_limit(nginx: Directive, server: Directive) -> None:
    http = nginx.child("http")
    for location in server.children("location"):
        values = effective("client_max_body_size", http, server, location)
        assert values, "client_max_body_size defaults to 1m; set it explicitly"
        limit = size_in_bytes(values[0][0])
        assert limit == 0 or limit >= BODY_LIMIT


def test_nginx_serves_the_web_client_from_the_mounted_root(nginx: Directive, server: Directive) -> None:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    mounts = {v.split(":")[1]: v.split(":")[0] for v in compose["services"]["nginx"]["volumes"]}
    assert mounts[WEB_ROOT] == "./clients/web"
    http = nginx.child("http")
    found = locations(server)
    page, assets = found[("=", "/")], found[("^~", "/assets/")]
    for location in (page, assets):
        assert effective("root", http, server, location) == [[WEB_ROOT]]
    assert page.child("try_files").args == ["/index.html", "=404"]
    assert assets.child("try_files").args == ["$uri", "=404"]
    assert found[("", "/")].child("return").args == ["404"]


@pytest.mark.parametrize(("path", "expected"), ROUTES.items())
def test_nginx_routes_like_the_contract(
    nginx: Directive, server: Directive, path: str, expected: str
) -> None:
    assert nginx_route(nginx, server, path) == expected


# ----------------------------------------------------------------------------------------------- Caddy


@dataclass
class Node:
    words: list[str]
    block: list[Node] = field(default_factory=list)


def caddy_words(line: str) -> list[str]:
    words, i = [], 0
    while i < len(line):
        if line[i].isspace():
            i += 1
        elif line[i] == "#":
            break
        elif line[i] in '"`':
            end = line.index(line[i], i + 1)
            words.append(line[i + 1 : end])
            i = end + 1
        else:
            j = i
            while j < len(line) and not line[j].isspace():
                j += 1
            words.append(line[i:j])
            i = j
    return words


def parse_caddyfile(text: str) -> list[Node]:
    """Caddyfile lines as a tree; a lone `{` ends a line that opens a block, a lone `}` closes one."""
    root: list[Node] = []
    stack = [root]
    for line in text.splitlines():
        words = caddy_words(line)
        if not words:
            continue
        if words == ["}"]:
            stack.pop()
            assert stack, "unbalanced }"
            continue
        opens = words[-1] == "{"
        node = Node(words[:-1] if opens else words)
        stack[-1].append(node)
        if opens:
            stack.append(node.block)
    assert len(stack) == 1, "unclosed block"
    return root


@pytest.fixture(scope="module")
def caddy() -> list[Node]:
    return parse_caddyfile(CADDYFILE.read_text())


def caddy_site(caddy: list[Node]) -> Node:
    sites = [node for node in caddy if node.words]
    assert len(sites) == 1
    return sites[0]


def walk(nodes: list[Node]) -> list[Node]:
    return [n for node in nodes for n in (node, *walk(node.block))]


# Placeholder -> the service it must reach, with the contract port as its default.
CADDY_UPSTREAMS = {
    "{$THREADLINE_API_ADDR:127.0.0.1:8000}": "api",
    "{$THREADLINE_STREAMER_ADDR:127.0.0.1:8001}": "streamer",
    "{$THREADLINE_PRESENCE_ADDR:127.0.0.1:8002}": "presence",
}


def caddy_matchers(site: Node) -> dict[str, list[list[str]]]:
    """Named matcher -> its lines (ANDed), each [matcher, args...]."""
    matchers = {}
    for node in site.block:
        if node.words[0].startswith("@"):
            lines = [node.words[1:]] if len(node.words) > 1 else [child.words for child in node.block]
            matchers[node.words[0]] = lines
    return matchers


def caddy_path_matches(pattern: str, path: str) -> bool:
    assert "*" not in pattern[:-1], f"only exact and trailing-* path patterns are modelled: {pattern}"
    if pattern.endswith("*"):
        return path.lower().startswith(pattern[:-1].lower())
    return path.lower() == pattern.lower()


def caddy_line_matches(line: list[str], path: str) -> bool:
    kind, *args = line
    if kind == "not":
        return not caddy_line_matches(args, path)
    if kind == "path":
        return any(caddy_path_matches(p, path) for p in args)
    if kind == "path_regexp":
        return re.search(args[-1], path) is not None
    raise AssertionError(f"matcher {kind} is not modelled")


def caddy_handle_outcome(handle: Node) -> str:
    directives = walk(handle.block)
    proxies = [n for n in directives if n.words[0] == "reverse_proxy"]
    if proxies:
        assert len(proxies) == 1
        return CADDY_UPSTREAMS[proxies[0].words[1]]
    if any(n.words[0] == "file_server" for n in directives):
        return "web"
    responses = [n.words[1:] for n in directives if n.words[0] in {"respond", "error"}]
    assert responses, f"handle {handle.words} neither proxies, serves files nor responds"
    return responses[0][0]


def caddy_route(site: Node, path: str) -> str:
    """Caddy sorts handle blocks by their matchers, so the model asks for at most one matching handle."""
    matchers = caddy_matchers(site)
    handles = [node for node in site.block if node.words[0] == "handle"]
    fallback = [h for h in handles if len(h.words) == 1]
    assert len(fallback) <= 1
    matching = [
        h
        for h in handles
        if len(h.words) == 2 and all(caddy_line_matches(line, path) for line in matchers[h.words[1]])
    ]
    assert len(matching) <= 1, f"{path} matches {[h.words for h in matching]}: routing would depend on order"
    if matching:
        return caddy_handle_outcome(matching[0])
    return caddy_handle_outcome(fallback[0]) if fallback else "404"


def test_caddy_global_options(caddy: list[Node]) -> None:
    global_blocks = [node for node in caddy if not node.words]
    assert len(global_blocks) == 1 and caddy[0] is global_blocks[0], "the global options block comes first"
    options = [node.words for node in global_blocks[0].block]
    assert ["auto_https", "off"] in options
    assert ["admin", "off"] in options


def test_caddy_listens_on_the_edge_port(caddy: list[Node]) -> None:
    address = caddy_site(caddy).words
    assert address in (["http://:{$THREADLINE_EDGE_PORT:8080}"], [":{$THREADLINE_EDGE_PORT:8080}"])


def test_caddy_names_every_route_matcher(caddy: list[Node]) -> None:
    lines = [line for matcher in caddy_matchers(caddy_site(caddy)).values() for line in matcher]
    paths = {p for line in lines if line[0] == "path" for p in line[1:]}
    assert {"/api/stream/*", "/api/presence/*", "/api/typing", "/api/*", "/", "/assets/*"} <= paths
    assert ["path_regexp", PRESENCE_REGEX] in [
        [line[0], line[-1]] for line in lines if line[0] == "path_regexp"
    ]


def test_caddy_upstreams_and_proxy_headers(caddy: list[Node]) -> None:
    proxies = [n for n in walk(caddy_site(caddy).block) if n.words[0] == "reverse_proxy"]
    assert {CADDY_UPSTREAMS[p.words[1]] for p in proxies} == set(SERVICE_PORTS)
    for proxy in proxies:
        header_up = [n.words[1:] for n in proxy.block if n.words[0] == "header_up"]
        assert ["X-Real-IP", "{remote_host}"] in header_up, proxy.words
        assert not any(h[0].lower().lstrip("-") == "x-request-id" for h in header_up), (
            "X-Request-ID untouched"
        )


def test_caddy_stream_is_flushed_immediately(caddy: list[Node]) -> None:
    site = caddy_site(caddy)
    stream_handles = [
        h for h in site.block if h.words[0] == "handle" and caddy_handle_outcome(h) == "streamer"
    ]
    assert len(stream_handles) == 1
    proxy = next(n for n in walk(stream_handles[0].block) if n.words[0] == "reverse_proxy")
    assert ["flush_interval", "-1"] in [n.words for n in proxy.block]


def test_caddy_serves_the_web_client_from_its_root(caddy: list[Node]) -> None:
    site = caddy_site(caddy)
    web = [h for h in site.block if h.words[0] == "handle" and caddy_handle_outcome(h) == "web"]
    assert len(web) == 2
    for handle in web:
        assert ["root", "{$THREADLINE_WEB_ROOT}"] in [n.words for n in handle.block]
    page = next(h for h in web if caddy_matchers(site)[h.words[1]] == [["path", "/"]])
    assert ["rewrite", "*", "/index.html"] in [n.words for n in page.block]


def test_caddy_allows_bodies_up_to_the_service_limit(caddy: list[Node]) -> None:
    request_body = [n for n in caddy_site(caddy).block if n.words == ["request_body"]]
    assert len(request_body) == 1
    (max_size,) = [n.words[1] for n in request_body[0].block if n.words[0] == "max_size"]
    match = re.fullmatch(r"(\d+)([KMG]i?B)?", max_size)
    assert match
    unit = match.group(2) or ""
    scale = {"": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
    assert int(match.group(1)) * scale[unit] >= BODY_LIMIT


@pytest.mark.parametrize(("path", "expected"), ROUTES.items())
def test_caddy_routes_like_the_contract(caddy: list[Node], path: str, expected: str) -> None:
    assert caddy_route(caddy_site(caddy), path) == expected


def test_route_table_exercises_every_contract_location() -> None:
    assert set(ROUTES.values()) == {*SERVICE_PORTS, "web", "404"}
    assert any(re.search(PRESENCE_REGEX, path) for path in ROUTES)


# ----------------------------------------------------------------------------------------- both edges


def test_both_edges_send_the_same_headers_with_the_web_client(server: Directive, caddy: list[Node]) -> None:
    """The page's files leave nginx and Caddy with the same headers, the page with a CSP that allows no
    inline script or style (clients/web has none) and nothing from another origin."""
    nginx_locations = locations(server)
    site = caddy_site(caddy)
    matchers = caddy_matchers(site)
    caddy_web = {
        matchers[handle.words[1]][0][1]: handle
        for handle in site.block
        if handle.words[0] == "handle" and caddy_handle_outcome(handle) == "web"
    }
    for nginx_location, caddy_path in ((("=", "/"), "/"), (("^~", "/assets/"), "/assets/*")):
        nginx_headers = {d.args[0]: d.args[1] for d in nginx_locations[nginx_location].children("add_header")}
        caddy_headers = caddy_headers_of(caddy_web[caddy_path])
        assert nginx_headers == caddy_headers, caddy_path
        assert nginx_headers["X-Content-Type-Options"] == "nosniff"
    policy = [p.strip() for p in caddy_headers_of(caddy_web["/"])["Content-Security-Policy"].split(";")]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert not any("unsafe" in p or "*" in p or "http" in p for p in policy), policy


def caddy_headers_of(handle: Node) -> dict[str, str]:
    return {n.words[1]: n.words[2] for n in handle.block if n.words[0] == "header"}
