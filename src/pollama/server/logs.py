"""Structured logs: logfmt lines like Ollama's (slog), each request's lines tagged with its id.

    time=2026-01-02T03:04:05.678+00:00 level=INFO source=pollama.server msg=request method=POST
    path=/api/chat status=200 duration=1.234s client=127.0.0.1 request=5f2c0a9e1b7d4c3a

OLLAMA_DEBUG picks the level as Ollama does: unset/0 = INFO, 1 = DEBUG, 2 = TRACE (which
adds llama.cpp's own log). A request's id is the client's `X-Request-Id` when it is a sane
token, otherwise a fresh one; it is echoed in the response's `X-Request-Id` and attached to
every line logged while serving the request (the scheduler's load lines included).
Headers are never logged, so neither are API keys.
"""

from __future__ import annotations

import contextvars
import logging
import re
import secrets
import time
from datetime import datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("pollama_request_id", default=None)

_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_BARE = re.compile(r"[^\s\"=\\]+")

log = logging.getLogger("pollama.server")


def _value(v: Any) -> str:
    text = str(v)
    if _BARE.fullmatch(text) and text.isprintable():
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return '"' + "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in escaped) + '"'


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds")
        parts = [
            f"time={stamp}",
            f"level={record.levelname}",
            f"source={record.name}",
            f"msg={_value(record.getMessage())}",
        ]
        for key, value in getattr(record, "fields", {}).items():
            parts.append(f"{key}={_value(value)}")
        rid = getattr(record, "request", None)
        if rid:
            parts.append(f"request={rid}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request"):
            record.request = request_id.get()
        return True


def setup(debug: int) -> None:
    """Root logging for the server process, by OLLAMA_DEBUG level."""
    level = TRACE if debug >= 2 else logging.DEBUG if debug == 1 else logging.INFO
    handler = logging.StreamHandler()
    handler.setFormatter(LogfmtFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # llama.cpp's own log is noisy: warnings only, its info at DEBUG, everything at TRACE
    llama_level = {0: logging.WARNING, 1: logging.INFO}.get(debug, TRACE)
    logging.getLogger("pollama.llama").setLevel(llama_level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope["headers"]:
        if k == name:
            return v.decode("latin-1")
    return None


class RequestLogMiddleware:
    """Give every request an id, echo it in X-Request-Id, and log one line when it ends."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        rid = given if given and _SAFE_ID.fullmatch(given) else secrets.token_hex(8)
        token = request_id.set(rid)
        start = time.perf_counter()
        status = 500

        async def tagged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"x-request-id", rid.encode())],
                }
            await send(message)

        try:
            await self.app(scope, receive, tagged)
        finally:
            client = scope.get("client")
            log.info(
                "request",
                extra={
                    "fields": {
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration": f"{time.perf_counter() - start:.3f}s",
                        "client": client[0] if client else "",
                    }
                },
            )
            request_id.reset(token)
