"""Treat every request body as JSON, whatever its Content-Type says, as Ollama does.

Ollama decodes bodies with encoding/json without looking at the header, and countless
scripts rely on it (`curl -d '{...}'` sends application/x-www-form-urlencoded). FastAPI
would try to parse those as forms, so the header is rewritten before routing. Blob uploads
are raw bytes and keep theirs.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

_RAW_PREFIXES = ("/api/blobs/",)


class JSONBodyMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in ("POST", "PUT", "DELETE", "PATCH")
            and not scope["path"].startswith(_RAW_PREFIXES)
        ):
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            headers.append((b"content-type", b"application/json"))
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)
