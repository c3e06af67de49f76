"""Model-management routes: create, blobs, show, copy, delete and tags (reference §1.7-1.12).

Store work is blocking file I/O (hashing, quantizing, fsync), so it runs in worker threads;
a create streams its progress from the worker through a queue. As in Ollama, an error
before the first progress line is an HTTP error with its status; a later one is an
`{"error": ...}` line in the stream.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.requests import ClientDisconnect

from pollama.api import errors
from pollama.api.errors import APIError
from pollama.api.manage import CopyRequest, CreateRequest, DeleteRequest, ShowRequest
from pollama.modelfile.gofmt import go_quote
from pollama.names import InvalidName, ModelName
from pollama.server.state import app_state
from pollama.server.streaming import NDJSON, json_response
from pollama.store import LocalModel
from pollama.store.create import Cancelled, build, plan
from pollama.store.show import rfc3339nano, show

log = logging.getLogger("pollama.server")
router = APIRouter()

_DONE = object()


def list_entry(m: LocalModel) -> dict[str, Any]:
    """One /api/tags item (Ollama's api.ListModelResponse)."""
    entry: dict[str, Any] = {
        "name": m.name.display,
        "model": m.name.display,
        "modified_at": rfc3339nano(m.modified_at),
        "size": m.size,
        "digest": m.digest,
        "details": m.details(with_parent=False),
    }
    caps = m.capabilities
    if caps:
        entry["capabilities"] = caps
    return entry


@router.api_route("/api/tags", methods=["GET", "HEAD"])
async def tags(request: Request) -> Response:
    store = app_state(request).store
    models = await asyncio.to_thread(lambda: [list_entry(m) for m in store.list()])
    return json_response({"models": models})


# -- blobs ----------------------------------------------------------------------------------


@router.head("/api/blobs/{digest}")
async def head_blob(digest: str, request: Request) -> Response:
    store = app_state(request).store
    path = store.blob_path(digest)  # APIError(400) for a bad digest
    if not await asyncio.to_thread(path.is_file):
        raise APIError(404, f"blob {go_quote(digest)} not found")
    return Response(status_code=200)


@router.post("/api/blobs/{digest}")
async def post_blob(digest: str, request: Request) -> Response:
    """Stream the body into a temp file in blobs/, check its sha256, then rename it into place."""
    store = app_state(request).store
    path = store.blob_path(digest)
    if await asyncio.to_thread(path.is_file):
        # Read the body anyway: answering before it is consumed makes the server close the
        # connection under a client still sending, which clients report as a failed upload.
        try:
            async for _ in request.stream():
                pass
        except ClientDisconnect:
            pass
        return Response(status_code=200)
    try:
        await store.write_blob_async(request.stream(), expected_digest=digest)
    except ClientDisconnect:
        log.info("upload of %s ended early; nothing was kept", digest)
        return Response(status_code=499)
    return Response(status_code=201)


# -- create ---------------------------------------------------------------------------------


@router.post("/api/create")
async def create(req: CreateRequest, request: Request) -> Response:
    store = app_state(request).store
    job = await asyncio.to_thread(plan, store, req)  # every request error surfaces here, nothing written
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    cancel = threading.Event()

    def emit(obj: dict[str, Any]) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, obj)

    def work() -> None:
        try:
            build(store, job, emit, cancel.is_set)
            emit({"status": "success"})
        except Cancelled:
            log.info("create of %s cancelled; nothing was kept", job.name.display)
        except APIError as exc:
            emit({"error": exc.message, "_status": exc.status})
        except Exception as exc:
            log.exception("create of %s failed", job.name.display)
            emit({"error": f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)})
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, _DONE)

    worker = loop.run_in_executor(None, work)
    first = await queue.get()
    if first is _DONE or "error" in first:
        await worker
        if first is _DONE:
            raise APIError(500, "create ended without a result")
        raise APIError(first.get("_status", 500), first["error"])

    async def objects() -> AsyncIterator[dict[str, Any]]:
        item = first
        try:
            while item is not _DONE:
                yield item
                item = await queue.get()
        finally:
            cancel.set()  # the client left early: stop at the next step and clean up

    if req.stream:

        async def body() -> AsyncIterator[bytes]:
            async for obj in objects():
                obj.pop("_status", None)
                yield orjson.dumps(obj) + b"\n"

        return StreamingResponse(body(), media_type=NDJSON)

    last: dict[str, Any] = {}
    async for obj in objects():
        last = obj
    status = last.pop("_status", 500) if "error" in last else 200
    return json_response(last, status=status)


# -- show, copy, delete -------------------------------------------------------------------


def _name(text: str) -> ModelName:
    try:
        return ModelName.parse(text)
    except InvalidName:
        raise errors.invalid_model_name() from None


@router.post("/api/show")
async def show_model(req: ShowRequest, request: Request) -> Response:
    text = req.model or req.name
    if not text:
        raise errors.model_required()
    model = app_state(request).store.resolve(_name(text))
    if model is None:
        raise errors.model_not_found(text)
    try:
        body = await asyncio.to_thread(
            show, model, verbose=req.verbose, system=req.system, options=req.options
        )
    except RuntimeError as exc:
        raise APIError(500, str(exc)) from None
    return json_response(body)


@router.post("/api/copy")
async def copy_model(req: CopyRequest, request: Request) -> Response:
    try:
        src = ModelName.parse(req.source)
    except InvalidName:
        raise APIError(400, f"source {go_quote(req.source)} is invalid") from None
    try:
        dst = ModelName.parse(req.destination)
    except InvalidName:
        raise APIError(400, f"destination {go_quote(req.destination)} is invalid") from None
    store = app_state(request).store
    if not await asyncio.to_thread(store.copy, src, dst):
        raise APIError(404, f"model {go_quote(req.source)} not found")
    return Response(status_code=200)


@router.delete("/api/delete")
async def delete_model(req: DeleteRequest, request: Request) -> Response:
    text = req.model or req.name
    try:
        name = ModelName.parse(text)
    except InvalidName:
        raise APIError(400, f"name {go_quote(text)} is invalid") from None
    store = app_state(request).store
    if not await asyncio.to_thread(store.delete, name):
        raise errors.model_not_found(text)
    return Response(status_code=200)
