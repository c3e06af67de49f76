"""Run a generation for an HTTP request: status before the first byte, NDJSON after it.

Ollama decides the status code when the first item is ready: an error before any output
is a proper HTTP error, an error later is one `{"error": ...}` line in a 200 stream. A
client that goes away cancels the generation, which frees its slot at the next step.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from pollama.api.errors import APIError
from pollama.engine import Failed, Generation
from pollama.scheduler import Lease

NDJSON = "application/x-ndjson"


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json; charset=utf-8")


async def _until_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


Shape = Callable[[Any], Iterable[dict[str, Any]]]


async def respond(
    request: Request,
    lease: Lease,
    gen: Generation,
    shape: Shape,
    *,
    stream: bool,
    combine: Callable[[list[dict[str, Any]]], dict[str, Any]],
) -> Response:
    """Drive `gen` to completion; `shape` turns each engine event into zero or more response objects.

    The lease is released and the generation cancelled (a no-op if it finished) whatever
    happens: normal end, error, or the client hanging up.
    """
    events = aiter(gen)
    try:
        first = await anext(events)
    except BaseException:
        gen.cancel()
        lease.release()
        raise
    if isinstance(first, Failed):
        lease.release()
        raise APIError(500, first.message)

    if stream:

        async def body() -> AsyncIterator[bytes]:
            try:
                async for event in _chain(first, events):
                    if isinstance(event, Failed):
                        yield orjson.dumps({"error": event.message}) + b"\n"
                        return
                    for obj in shape(event):
                        yield orjson.dumps(obj) + b"\n"
            finally:
                gen.cancel()
                lease.release()

        return StreamingResponse(body(), media_type=NDJSON)

    watcher = asyncio.create_task(_until_disconnect(request))
    watcher.add_done_callback(lambda _t: gen.cancel())
    parts: list[dict[str, Any]] = []
    try:
        async for event in _chain(first, events):
            if isinstance(event, Failed):
                raise APIError(500, event.message)
            parts.extend(shape(event))
    finally:
        watcher.cancel()
        gen.cancel()
        lease.release()
    return json_response(combine(parts))


async def _chain(first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[Any]:
    yield first
    async for item in rest:
        yield item
