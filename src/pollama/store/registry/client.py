"""One conversation with a registry: URLs, the httpx client, auth on a 401, Ollama's error texts.

Every request goes through `Registry.open`, which retries once after fetching a token
(auth.py) and maps failures to RegistryError with the messages Ollama gives: a 404 is
`file does not exist`, another 4xx/5xx is `<status>: <body>`, a second 401 is
`unauthorized: access denied`, and a registry that cannot be reached says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import platform
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from pollama import OLLAMA_COMPAT_VERSION, __version__
from pollama.api.errors import APIError
from pollama.names import ModelName
from pollama.store.manifest import MEDIA_MANIFEST
from pollama.store.registry.auth import AuthError, Challenge, load_key, signed_token_request

CONNECT_TIMEOUT = 10.0  # an unreachable registry must fail fast, not hang
READ_TIMEOUT = 120.0  # a registry may take a while to answer a finished upload (it hashes the blob)
MAX_MANIFEST = 4 << 20
USER_AGENT = f"ollama/{OLLAMA_COMPAT_VERSION} (pollama/{__version__}; {platform.machine()} {platform.system().lower()})"
logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request floods the server log
_ERRNO = re.compile(r"^\[Errno -?\d+\]\s*")
# Go's http.ProxyFromEnvironment never proxies loopback; httpx would, so these go direct.
_DIRECT = ("all://localhost", "all://127.0.0.1", "all://[::1]")

Body = bytes | Callable[[], Any] | None


class RegistryError(APIError):
    """A pull or push failed; the message is what the client sees (Ollama's text where it has one)."""

    def __init__(self, message: str, status: int = 500):
        super().__init__(status, message)


class NotFound(RegistryError):
    def __init__(self) -> None:
        super().__init__("file does not exist")  # Go's os.ErrNotExist, as Ollama reports a 404


class Retryable(RegistryError):
    """A failure worth another try: a dropped connection, a timeout, a 5xx or 429."""


class Unreachable(Retryable):
    """Nothing answers at the registry's address (DNS, refused, connect timeout). Worth a retry
    only when the registry answered before (see Registry.reached)."""


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectTimeout):
        text = "connection timed out"
    return _ERRNO.sub("", text)


class Registry:
    """The registry that serves `name` (its host, scheme and repository)."""

    def __init__(self, name: ModelName, insecure: bool, home: Path, token: str | None = None):
        self.name = name
        self.insecure = insecure
        self.home = home
        scheme = "http" if insecure else (name.scheme or "https")  # Ollama: insecure forces http
        self.base = f"{scheme}://{name.host}"
        self._token = token
        self._auth_lock = asyncio.Lock()
        self.reached = False  # it answered at least once: a later connection failure is a blip
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
            headers={"User-Agent": USER_AGENT},
            mounts={pattern: httpx.AsyncHTTPTransport() for pattern in _DIRECT},
        )

    def clone(self) -> Registry:
        """Another client for the same registry and token (a shared download outlives its first puller)."""
        other = Registry(self.name, self.insecure, self.home, self._token)
        other.reached = self.reached
        return other

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Registry:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def url(self, *parts: str, repository: str | None = None) -> str:
        return f"{self.base}/v2/{repository or self.name.repository}/" + "/".join(parts)

    def unreachable(self, exc: BaseException) -> Unreachable:
        reason = _reason(exc)
        if "SSL" in reason and self.base.startswith("https:"):
            reason += "; if the registry speaks plain http, use insecure (--insecure)"
        return Unreachable(f"cannot reach the registry {self.name.host} ({self.base}): {reason}")

    @contextlib.asynccontextmanager
    async def open(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        body: Body = None,
        params: dict[str, str] | None = None,
        read_timeout: float | None = None,
        follow_redirects: bool = True,
    ) -> AsyncIterator[httpx.Response]:
        """Send a request and yield the streamed response (status < 400). A callable `body` is
        called for each attempt, so a streamed upload can be replayed after the 401."""
        timeout = httpx.Timeout(read_timeout or READ_TIMEOUT, connect=CONNECT_TIMEOUT)
        for attempt in (1, 2):
            token = self._token
            sent = dict(headers or {})
            if token:
                sent["Authorization"] = f"Bearer {token}"
            content = body() if callable(body) else body
            full = httpx.URL(url).copy_merge_params(params) if params else url  # keeps `?_state=`
            request = self._http.build_request(method, full, headers=sent, content=content, timeout=timeout)
            try:
                response = await self._http.send(request, stream=True, follow_redirects=follow_redirects)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                raise self.unreachable(exc) from exc
            except httpx.TransportError as exc:
                raise Retryable(f"{method} {url}: {_reason(exc)}") from exc
            self.reached = True
            try:
                status = response.status_code
                if status == 401 and attempt == 1:
                    await self._authenticate(response.headers.get("www-authenticate", ""), token)
                    continue
                if status == 401:
                    raise RegistryError("unauthorized: access denied")
                if status == 404:
                    raise NotFound()
                if status >= 400:
                    text = (await response.aread()).decode("utf-8", "replace").strip()
                    kind = Retryable if status >= 500 or status == 429 else RegistryError
                    raise kind(f"{status}: {text}" if text else str(status))
            except httpx.TransportError as exc:
                raise Retryable(f"{method} {url}: {_reason(exc)}") from exc
            finally:
                if response.status_code >= 400:
                    await response.aclose()
            try:
                yield response
            finally:
                await response.aclose()
            return

    async def _authenticate(self, header: str, used: str | None) -> None:
        """Fetch a token for the challenge in `header` (once, however many requests got the 401)."""
        async with self._auth_lock:
            if self._token != used:
                return  # another request already fetched a fresh token
            challenge = Challenge.parse(header)
            if challenge.scheme != "bearer" or not challenge.realm:
                kind = challenge.scheme or "unknown"
                raise RegistryError(
                    f"unauthorized: the registry asks for {kind} authentication, pollama supports bearer tokens only"
                )
            realm_host = urlsplit(challenge.realm).netloc
            if realm_host.lower() != self.name.host.lower():
                # a registry must not be able to make us sign requests for another host (Ollama's check)
                raise RegistryError(
                    f"realm host {realm_host!r} does not match original host {self.name.host!r}"
                )
            url = challenge.token_url()
            try:
                key = await asyncio.to_thread(load_key, self.home)
                auth = signed_token_request(key, url)
            except (OSError, ValueError, AuthError) as exc:
                raise RegistryError(
                    f"cannot sign the token request with {self.home / 'id_ed25519'}: {exc}"
                ) from exc
            try:
                response = await self._http.get(url, headers={"Authorization": auth})
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                raise self.unreachable(exc) from exc
            except httpx.TransportError as exc:
                raise Retryable(f"GET {url}: {_reason(exc)}") from exc
            if response.status_code >= 400:
                text = response.text.strip()
                raise RegistryError(f"{response.status_code}: {text}" if text else str(response.status_code))
            try:
                obj = response.json()
                token = obj.get("token") or obj.get("access_token")
            except (ValueError, AttributeError):
                token = None
            if not isinstance(token, str) or not token:
                raise RegistryError("the registry's token endpoint answered without a token")
            self._token = token

    async def manifest(self, tag: str) -> bytes:
        """The manifest's raw bytes (its digest is the sha256 of exactly these bytes)."""
        async with self.open("GET", self.url("manifests", tag), headers={"Accept": MEDIA_MANIFEST}) as r:
            data = bytearray()
            async for chunk in r.aiter_bytes():
                data += chunk
                if len(data) > MAX_MANIFEST:
                    raise RegistryError(f"manifest is larger than {MAX_MANIFEST} bytes")
            said = r.headers.get("docker-content-digest", "")
        data = bytes(data)
        if said.startswith("sha256:") and said != "sha256:" + hashlib.sha256(data).hexdigest():
            raise RegistryError(f"manifest digest mismatch: the registry said {said}")
        return data
