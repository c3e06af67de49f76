"""Model-management routes: create, blobs, show, copy, delete and tags (reference §1.7-1.12).

Store work is blocking file I/O (hashing, quantizing, fsync), so it runs in worker threads;
a create streams its progress from the worker through a queue, after the progress of
pulling its base model when that is missing (as Ollama does). As in Ollama, an error
before the first progress line is an HTTP error with its status; a later one is an
`{"error": ...}` line in the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from pollama.server.state import AppState, app_state
from pollama.server.streaming import NDJSON, json_response
from pollama.store import LocalModel, Store
from pollama.store.create import Cancelled, MissingBase, Plan, build, plan
from pollama.store.registry import pull_model
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
    state = app_state(request)
    try:  # every request error surfaces here, before anything is written
        job = await asyncio.to_thread(plan, state.store, req)
        objects = _built(state.store, job)
    except MissingBase as missing:
        objects = _pull_then_build(state, req, missing.name)
    try:
        first = await anext(objects)  # an error before the first progress line is an HTTP error
    except StopAsyncIteration:
        raise APIError(500, "create ended without a result") from None
    except BaseException:
        await objects.aclose()
        raise

    if req.stream:

        async def body() -> AsyncIterator[bytes]:
            try:
                yield orjson.dumps(first) + b"\n"
                async for obj in objects:
                    yield orjson.dumps(obj) + b"\n"
            except APIError as exc:
                yield orjson.dumps({"error": exc.message}) + b"\n"
            finally:
                await objects.aclose()  # the client left early: stop the pull or the build

        return StreamingResponse(body(), media_type=NDJSON)

    last = first
    try:
        async for obj in objects:
            last = obj
    except APIError as exc:
        return json_response({"error": exc.message}, status=exc.status)
    finally:
        await objects.aclose()
    return json_response(last)


async def _pull_then_build(
    state: AppState, req: CreateRequest, base: ModelName
) -> AsyncIterator[dict[str, Any]]:
    """Ollama's create pulls a missing base model with default registry options (https unless
    the name says http, which then fails as `insecure protocol http`), streaming the pull's
    progress objects, its `success` included, before the create's own."""
    pulling = pull_model(
        state.store,
        base,
        insecure=False,
        home=state.settings.home,
        stall_timeout=state.settings.registry_stall_timeout,
    )
    async with contextlib.aclosing(pulling):
        async for obj in pulling:
            yield obj
    job = await asyncio.to_thread(plan, state.store, req)  # the rest of the request is checked now
    async with contextlib.aclosing(_built(state.store, job)) as building:
        async for obj in building:
            yield obj


async def _built(store: Store, job: Plan) -> AsyncIterator[dict[str, Any]]:
    """Run build() in a worker thread and yield its progress objects; APIError if it fails.
    Closing the iterator (the client went away) stops the build at its next step."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    cancel = threading.Event()

    def emit(obj: dict[str, Any] | APIError) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, obj)

    def work() -> None:
        try:
            build(store, job, emit, cancel.is_set)
            emit({"status": "success"})
        except Cancelled:
            log.info("create of %s cancelled; nothing was kept", job.name.display)
        except APIError as exc:
            emit(exc)
        except Exception as exc:
            log.exception("create of %s failed", job.name.display)
            emit(APIError(500, str(exc) or type(exc).__name__))
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, _DONE)

    loop.run_in_executor(None, work)
    try:
        while (item := await queue.get()) is not _DONE:
            if isinstance(item, APIError):
                raise item
            yield item
    finally:
        cancel.set()


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
