"""Run a generation for an HTTP request: status before the first byte, stream after it.

Ollama decides the status code when the first item is ready: an error before any output
is a proper HTTP error, an error later is one `{"error": ...}` line in a 200 stream. A
client that goes away cancels the generation, which frees its slot at the next step.

`open_stream` turns engine events into response objects (through a `shape` function);
the sinks below write them as NDJSON or as one JSON object. The OpenAI routes reuse
`open_stream` with their own sinks (SSE).

On shutdown `abort_streams` ends every open generation with "server is shutting down":
an error line in a stream that has started, a 503 for one still waiting for its first token.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from pollama.api.errors import APIError
from pollama.engine import Failed, Generation
from pollama.scheduler import Lease
from pollama.server import metrics

NDJSON = "application/x-ndjson"

Shape = Callable[[Any], Iterable[dict[str, Any]]]


SHUTTING_DOWN = "server is shutting down"


class ShuttingDown(Failed):
    """Injected by abort_streams: the server is stopping, not the generation failing."""


_live: weakref.WeakSet[Generation] = weakref.WeakSet()  # generations a client is waiting on
_closing = False


def abort_streams() -> int:
    """End every open generation now (graceful shutdown); later ones end as soon as they open."""
    global _closing
    _closing = True
    live = list(_live)
    for gen in live:
        _abort(gen)
    return len(live)


def _abort(gen: Generation) -> None:
    gen.cancel()  # frees the slot at the runner's next step
    gen.push(ShuttingDown(SHUTTING_DOWN))


class StreamError(Exception):
    """The generation failed after output had started: report it in-band."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


_second: list = [0, ""]  # the formatted date and time of the current second


def now_rfc3339() -> str:
    """UTC now with microseconds, as Ollama's created_at; formats the date once per second
    (this runs for every streamed token, and strftime costs ~15 us)."""
    now = time.time()
    sec = int(now)
    if sec != _second[0]:
        _second[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        _second[0] = sec
    return f"{_second[1]}.{int((now - sec) * 1e6):06d}Z"


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json; charset=utf-8")


async def open_stream(lease: Lease, gen: Generation, shape: Shape) -> AsyncIterator[dict[str, Any]]:
    """Wait for the first event (so a failure there is an HTTP error), then yield shaped objects.

    The returned iterator owns the lease and the generation: closing it early (client gone)
    cancels the generation; either way the lease is released exactly once. A failure after
    the first event raises StreamError from the iterator.
    """
    events = aiter(gen)
    record = metrics.generation_recorder(lease.loaded.name, gen.submitted_ns)
    _live.add(gen)
    if _closing:
        _abort(gen)
    try:
        first = await anext(events)
    except BaseException:
        _live.discard(gen)
        gen.cancel()
        lease.release()
        if record:
            record(None)
        raise
    if record:
        record(first)
    if isinstance(first, Failed):
        _live.discard(gen)
        lease.release()
        raise APIError(503 if isinstance(first, ShuttingDown) else 500, first.message)

    async def objects() -> AsyncIterator[dict[str, Any]]:
        try:
            event = first
            while True:
                if isinstance(event, Failed):
                    raise StreamError(event.message)
                for obj in shape(event):
                    yield obj
                event = await anext(events)  # StopAsyncIteration after the final event
                if record:
                    record(event)
        except StopAsyncIteration:
            return
        finally:
            _live.discard(gen)
            gen.cancel()
            lease.release()
            if record:
                record(None)

    return objects()


def ndjson(objects: AsyncIterator[dict[str, Any]]) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        try:
            async for obj in objects:
                yield orjson.dumps(obj) + b"\n"
        except StreamError as exc:
            yield orjson.dumps({"error": exc.message}) + b"\n"
        finally:
            await objects.aclose()

    return StreamingResponse(body(), media_type=NDJSON)


async def _until_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def collect(request: Request, objects: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    """All objects of a non-streaming request; a client that hangs up cancels the work."""
    consumer = asyncio.current_task()
    watcher = asyncio.create_task(_until_disconnect(request))
    watcher.add_done_callback(lambda t: consumer.cancel() if not t.cancelled() else None)
    try:
        return [obj async for obj in objects]
    except StreamError as exc:
        raise APIError(503 if exc.message == SHUTTING_DOWN else 500, exc.message) from exc
    except asyncio.CancelledError:
        # Cancelled by the watcher: the client is gone. Answer Ollama's 499 (to nobody)
        # rather than letting the cancellation escape as a server error with a traceback.
        if watcher.done() and not watcher.cancelled() and consumer.uncancel() == 0:
            raise APIError(499, "request canceled") from None
        raise
    finally:
        watcher.cancel()
        await objects.aclose()


async def respond(
    request: Request,
    objects: AsyncIterator[dict[str, Any]],
    *,
    stream: bool,
    combine: Callable[[list[dict[str, Any]]], dict[str, Any]],
) -> Response:
    """Native sinks: NDJSON when streaming, otherwise one JSON object built by `combine`."""
    if stream:
        return ndjson(objects)
    return json_response(combine(await collect(request, objects)))
