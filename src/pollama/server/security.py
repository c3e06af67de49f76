"""Who may talk to the server: CORS, the DNS-rebinding Host check, and optional API keys.

CORS and the Host check copy Ollama (ollama-reference §7.5: gin-contrib/cors with Ollama's
config, then `allowedHostsMiddleware`), with one difference: a refused origin or host gets
a 403 whose body says which setting to change, instead of an empty one (ollama#2308,
#3016). API keys are pollama's own (Ollama has none, ollama#1053): when any key is set,
every request but `GET /` and `GET /api/version` (the liveness checks clients make before
anything else) must carry `Authorization: Bearer <key>`.

One pure ASGI middleware, so streamed responses pass through untouched.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
from functools import cache

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pollama.config import Settings
from pollama.server.errors import error_response

# envconfig.AllowedOrigins: OLLAMA_ORIGINS first, then these.
_LOCAL_ORIGIN_HOSTS = ("localhost", "127.0.0.1", "0.0.0.0")
_APP_ORIGINS = ("app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*")

ALLOW_METHODS = "GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS"
ALLOW_HEADERS = ",".join(
    [
        "Authorization",
        "Content-Type",
        "User-Agent",
        "Accept",
        "X-Requested-With",
        "Openai-Beta",
        *(
            "X-Stainless-" + h
            for h in (
                "Arch",
                "Async",
                "Custom-Poll-Interval",
                "Helper-Method",
                "Lang",
                "Os",
                "Package-Version",
                "Poll-Helper",
                "Retry-Count",
                "Runtime",
                "Runtime-Version",
                "Timeout",
            )
        ),
    ]
)
MAX_AGE = "43200"  # gin-contrib/cors default: 12 hours

# Go's netip IsPrivate: RFC 1918 and RFC 4193 only (Python's is_private is much wider).
_PRIVATE = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_LOCAL_TLDS = (".localhost", ".local", ".internal")

_OPEN_PATHS = ("/", "/api/version")


def default_origins(extra: tuple[str, ...]) -> list[str]:
    origins = list(extra)
    for host in _LOCAL_ORIGIN_HOSTS:
        origins += [f"http://{host}", f"https://{host}", f"http://{host}:*", f"https://{host}:*"]
    return origins + list(_APP_ORIGINS)


class OriginPolicy:
    """gin-contrib/cors matching: exact origins, one `*` wildcard per pattern, or `*` for all."""

    def __init__(self, origins: list[str]):
        self.allow_all = "*" in origins
        self.exact = {o.lower() for o in origins if "*" not in o}
        self.wildcards: list[tuple[str, str]] = []
        for o in origins:
            if "*" in o and o != "*":
                i = o.index("*")
                self.wildcards.append((o[:i].lower(), o[i + 1 :].lower()))

    def allows(self, origin: str) -> bool:
        if self.allow_all:
            return True
        origin = origin.lower()
        if origin in self.exact:
            return True
        return any(origin.startswith(pre) and origin.endswith(suf) for pre, suf in self.wildcards)


def is_loopback_bind(host: str) -> bool:
    """Ollama applies the Host check only when the listener is on a loopback address."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback for i in infos)


@cache
def _own_addresses() -> frozenset[str]:
    """This machine's addresses (Go's isLocalIP walks the interfaces; resolving our name is close)."""
    found: set[str] = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.add(info[4][0].split("%")[0])
    except OSError:
        pass
    return frozenset(found)


def host_allowed(host_header: str) -> bool:
    """allowedHostsMiddleware: local IPs, localhost, our hostname, *.localhost/.local/.internal."""
    host = host_header.lower()
    if host.startswith("["):  # [v6]:port or [v6]
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        if ip.is_loopback or ip.is_unspecified or any(ip in n for n in _PRIVATE if n.version == ip.version):
            return True
        return str(ip) in _own_addresses()
    if host in ("", "localhost") or host == socket.gethostname().lower():
        return True
    return host.endswith(_LOCAL_TLDS)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


class APIKeys:
    """Bearer keys, compared in constant time (digests of equal length; every key is tried)."""

    def __init__(self, keys: tuple[str, ...]):
        self._digests = [_digest(k) for k in keys]

    def __bool__(self) -> bool:
        return bool(self._digests)

    def __repr__(self) -> str:  # never print the keys
        return f"APIKeys({len(self._digests)} keys)"

    def check(self, authorization: str) -> bool:
        scheme, _, token = authorization.strip().partition(" ")
        given = _digest(token.strip()) if scheme.lower() == "bearer" else b""
        ok = False
        for d in self._digests:
            ok |= hmac.compare_digest(given, d)
        return ok


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope["headers"]:
        if k == name:
            return v.decode("latin-1")
    return None


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.origins = OriginPolicy(default_origins(settings.origins))
        self.check_host = is_loopback_bind(settings.host.host)
        self.keys = APIKeys(settings.api_keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        host = _header(scope, b"host") or ""
        origin = _header(scope, b"origin")
        cors_headers: list[tuple[bytes, bytes]] = []

        # 1. CORS (gin-contrib/cors): a request from our own origin is not a CORS request.
        if origin and origin not in (f"http://{host}", f"https://{host}"):
            if not self.origins.allows(origin):
                await self._refuse(
                    scope,
                    receive,
                    send,
                    403,
                    f"origin {origin!r} is not allowed; start the server with "
                    f"OLLAMA_ORIGINS={origin} (comma-separated, wildcards allowed) to allow it",
                )
                return
            allow = b"*" if self.origins.allow_all else origin.encode("latin-1")
            if method == "OPTIONS":  # preflight: answered here, never reaches the routes
                headers = [
                    (b"access-control-allow-origin", allow),
                    (b"access-control-allow-methods", ALLOW_METHODS.encode()),
                    (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
                    (b"access-control-max-age", MAX_AGE.encode()),
                    (b"vary", b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
                ]
                await Response(status_code=204)(scope, receive, _with_headers(send, headers))
                return
            cors_headers = [(b"access-control-allow-origin", allow)]
            if not self.origins.allow_all:
                cors_headers.append((b"vary", b"Origin"))

        # 2. DNS rebinding: on a loopback listener only local host names are served.
        if self.check_host:
            if not host_allowed(host):
                await self._refuse(
                    scope,
                    receive,
                    send,
                    403,
                    f"host {host!r} is not allowed: the server listens on loopback and only answers "
                    "local host names (DNS-rebinding protection); set OLLAMA_HOST=0.0.0.0 to serve "
                    "other hosts",
                )
                return
            if method == "OPTIONS":
                await Response(status_code=204)(scope, receive, _with_headers(send, cors_headers))
                return

        # 3. API keys (the answer keeps the CORS headers, so a browser page can read it).
        if (
            self.keys
            and method != "OPTIONS"
            and not self._open(scope)
            and not self.keys.check(_header(scope, b"authorization") or "")
        ):
            await self._refuse(
                scope,
                receive,
                send,
                401,
                "unauthorized: missing or invalid API key (send 'Authorization: Bearer <key>' "
                "with a key from POLLAMA_API_KEYS)",
                [(b"www-authenticate", b"Bearer"), *cors_headers],
            )
            return

        await self.app(scope, receive, _with_headers(send, cors_headers) if cors_headers else send)

    @staticmethod
    def _open(scope: Scope) -> bool:
        return scope["method"] in ("GET", "HEAD") and scope["path"] in _OPEN_PATHS

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        status: int,
        message: str,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        response = error_response(Request(scope), status, message)
        await response(scope, receive, _with_headers(send, headers or []))


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    if not extra:
        return send

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return wrapped
