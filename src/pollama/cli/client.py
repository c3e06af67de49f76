"""A small synchronous HTTP client for the CLI (the server may be local or remote: OLLAMA_HOST)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

from pollama.config import settings


class ServerUnreachable(RuntimeError):
    pass


class ClientError(RuntimeError):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or f"HTTP {response.status_code}"
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    return response.text.strip()


class Client:
    def __init__(self, base_url: str | None = None, timeout: float | None = None):
        self.base_url = base_url or settings().host.client_url
        headers = {}
        keys = settings().api_keys
        if keys:
            headers["Authorization"] = f"Bearer {keys[0]}"
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers)

    def _send(self, method: str, path: str, body: Any = None) -> httpx.Response:
        try:
            response = self._http.request(method, path, json=body)
        except httpx.ConnectError as exc:
            raise ServerUnreachable(self.base_url) from exc
        if response.status_code >= 400:
            raise ClientError(response.status_code, _message(response))
        return response

    def get(self, path: str) -> Any:
        return self._send("GET", path).json()

    def post(self, path: str, body: Any) -> Any:
        response = self._send("POST", path, body)
        return response.json() if response.content else None

    def delete(self, path: str, body: Any) -> None:
        self._send("DELETE", path, body)

    def stream(self, path: str, body: Any) -> Iterator[dict[str, Any]]:
        """POST and yield each NDJSON object; an `{"error"}` line raises ClientError."""
        try:
            with self._http.stream("POST", path, json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ClientError(response.status_code, _message(response))
                for line in response.iter_lines():
                    if not line.strip():
                        continue
                    obj = json.loads(line)
                    if "error" in obj:
                        raise ClientError(500, obj["error"])
                    yield obj
        except httpx.ConnectError as exc:
            raise ServerUnreachable(self.base_url) from exc
