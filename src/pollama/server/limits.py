"""Hostile request bodies: too big, not UTF-8, or JSON nested deeper than any parser should go.

Every body except a blob upload is JSON, which the app parses in memory anyway, so it is
read here in full (up to POLLAMA_MAX_BODY_BYTES) and checked before routing. Blob uploads
(`/api/blobs/...`) are passed through as a stream: they may be many GB and the blob route
writes them to disk as they arrive.

Each refusal is a clear 4xx; nothing of the body reaches the app. An oversized body is
still read to its end (and dropped), up to DRAIN_LIMIT, so that a client that sends the
whole body before reading the answer sees the 413 instead of a reset connection.
"""

from __future__ import annotations

import re

import numpy as np
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pollama.server.errors import error_response

MAX_DEPTH = 256  # Go's encoding/json allows 10000; Python's recursion limit is ~1000 frames
DRAIN_LIMIT = 1 << 30
STREAMED_PREFIXES = ("/api/blobs/",)
_BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def nesting_depth(body: bytes) -> int:
    """The deepest nesting of arrays/objects in a JSON text (brackets inside strings ignored)."""
    if body.count(b"[") + body.count(b"{") == 0:
        return 0
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    arr = np.frombuffer(brackets, np.uint8)
    steps = np.where((arr == ord("[")) | (arr == ord("{")), 1, -1).astype(np.int32)
    return int(np.cumsum(steps).max())


def body_problem(body: bytes) -> str | None:
    """Why this JSON body is refused before parsing, or None."""
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"invalid UTF-8 in request body at byte {exc.start}"
    # Only a body with more brackets than the limit can be nested deeper than it.
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and nesting_depth(body) > MAX_DEPTH:
        return f"request body is nested too deeply (more than {MAX_DEPTH} levels)"
    return None


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in _BODY_METHODS
            or scope["path"].startswith(STREAMED_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        too_large = f"request body too large: the limit is {self.max_bytes} bytes (set POLLAMA_MAX_BODY_BYTES to change it)"
        declared = _content_length(scope)
        if declared is not None and declared > DRAIN_LIMIT:
            await self._refuse(scope, receive, send, 413, too_large)
            return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            data = message.get("body", b"")
            size += len(data)
            more = message.get("more_body", False)
            if size <= self.max_bytes:
                chunks.append(data)
            elif size > DRAIN_LIMIT:
                break
        if size > self.max_bytes:
            await self._refuse(scope, receive, send, 413, too_large)
            return
        body = b"".join(chunks)
        problem = body_problem(body)
        if problem:
            await self._refuse(scope, receive, send, 400, problem)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as usual

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
        await error_response(Request(scope), status, message)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for k, v in scope["headers"]:
        if k == b"content-length":
            try:
                return int(v)
            except ValueError:
                return None
    return None
