"""A small synchronous HTTP client for the CLI (the server may be local or remote: OLLAMA_HOST)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import httpx

from pollama.config import settings

UPLOAD_CHUNK = 1 << 20


class ServerUnreachable(RuntimeError):
    """Nothing answers at OLLAMA_HOST."""


class ClientError(RuntimeError):
    def __init__(self, status: int, message: str, method: str = "", path: str = ""):
        super().__init__(message)
        self.status = status
        self.method = method
        self.path = path

    @property
    def route_missing(self) -> bool:
        """The server has no such route (gin's plain-text 404/405): it is older than this client."""
        return str(self) in ("404 page not found", "405 method not allowed")

    @property
    def model_missing(self) -> bool:
        return self.status == 404 and not self.route_missing and "not found" in str(self)


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or f"HTTP {response.status_code}"
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, str):
            return error
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
    return response.text.strip()


class Client:
    def __init__(self, base_url: str | None = None):
        self.base_url = base_url or settings().host.client_url
        headers = {"User-Agent": "pollama-cli"}
        keys = settings().api_keys
        if keys:
            headers["Authorization"] = f"Bearer {keys[0]}"
        # No read timeout: a generation or a quantization may legitimately stay silent for long.
        timeout = httpx.Timeout(None, connect=10.0)
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.ConnectError as exc:
            raise ServerUnreachable(self.base_url) from exc
        except httpx.TransportError as exc:
            raise ClientError(
                0, f"connection to {self.base_url} failed: {exc or type(exc).__name__}"
            ) from exc

    def _send(self, method: str, path: str, body: Any = None) -> httpx.Response:
        with self._errors():
            response = self._http.request(method, path, json=body)
        if response.status_code >= 400:
            raise ClientError(response.status_code, _message(response), method, path)
        return response

    def heartbeat(self) -> None:
        self._send("HEAD", "/")

    def get(self, path: str) -> Any:
        return self._send("GET", path).json()

    def post(self, path: str, body: Any) -> Any:
        response = self._send("POST", path, body)
        return response.json() if response.content else None

    def delete(self, path: str, body: Any) -> None:
        with self._errors():
            response = self._http.request("DELETE", path, content=json.dumps(body).encode())
        if response.status_code >= 400:
            raise ClientError(response.status_code, _message(response), "DELETE", path)

    def stream(self, path: str, body: Any) -> Iterator[dict[str, Any]]:
        """POST and yield each NDJSON object; an `{"error"}` line raises ClientError.

        Closing the generator (or an exception such as KeyboardInterrupt while it waits)
        closes the connection, which the server takes as a cancellation.
        """
        with self._errors(), self._http.stream("POST", path, json=body) as response:
            if response.status_code >= 400:
                response.read()
                raise ClientError(response.status_code, _message(response), "POST", path)
            for line in response.iter_lines():
                if not line.strip():
                    continue
                obj = json.loads(line)
                if "error" in obj:
                    raise ClientError(500, obj["error"], "POST", path)
                yield obj

    def has_blob(self, digest: str) -> bool:
        with self._errors():
            response = self._http.head(f"/api/blobs/{digest}")
        if response.status_code == 200:
            return True
        if response.status_code == 404:  # a HEAD answer has no body: a missing route shows on POST
            return False
        raise ClientError(response.status_code, _message(response), "HEAD", "/api/blobs")

    def upload_blob(
        self, digest: str, file: BinaryIO, size: int, advance: Callable[[int], None] | None = None
    ) -> None:
        """POST the file's bytes to /api/blobs/<digest>, reporting progress per chunk."""

        def chunks() -> Iterator[bytes]:
            while data := file.read(UPLOAD_CHUNK):
                if advance:
                    advance(len(data))
                yield data

        headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
        with self._errors():
            response = self._http.post(f"/api/blobs/{digest}", content=chunks(), headers=headers)
        if response.status_code >= 400:
            raise ClientError(response.status_code, _message(response), "POST", "/api/blobs")
