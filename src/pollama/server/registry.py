"""POST /api/pull and POST /api/push: the registry transfers, streamed as Ollama's status objects.

An error before the first status (an invalid name, `insecure protocol http` on a pull) is
an HTTP error; once the stream has started it is one `{"error": ...}` line. With
`stream: false` the answer is the last status (`{"status":"success"}`) or a 500 error.
A client that hangs up stops its transfer; a download another client still waits for goes on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pollama.api import errors
from pollama.api.errors import APIError
from pollama.api.registry import PullRequest, PushRequest
from pollama.names import InvalidName, ModelName
from pollama.server.state import app_state
from pollama.server.streaming import StreamError, respond
from pollama.store.registry import pull_model, push_model

router = APIRouter()


def _parse(text: str) -> ModelName:
    try:
        return ModelName.parse(text)
    except InvalidName as exc:
        raise errors.invalid_model_name() from exc


async def _answer(request: Request, objects: AsyncIterator[dict[str, Any]], stream: bool) -> Response:
    try:
        first = await anext(objects)  # a failure here is the response's status
    except BaseException:
        await objects.aclose()
        raise

    async def rest() -> AsyncIterator[dict[str, Any]]:
        try:
            yield first
            async for obj in objects:
                yield obj
        except APIError as exc:
            raise StreamError(exc.message) from exc
        finally:
            await objects.aclose()

    return await respond(request, rest(), stream=stream, combine=lambda objs: objs[-1])


@router.post("/api/pull")
async def pull(req: PullRequest, request: Request) -> Response:
    state = app_state(request)
    name = _parse(req.model or req.name)
    found = state.store.existing_name(name)  # pull over an installed model of another casing
    name = ModelName(found.host, found.namespace, found.model, found.tag, name.scheme)
    objects = pull_model(
        state.store,
        name,
        insecure=req.insecure,
        home=state.settings.home,
        stall_timeout=state.settings.registry_stall_timeout,
    )
    return await _answer(request, objects, req.stream)


@router.post("/api/push")
async def push(req: PushRequest, request: Request) -> Response:
    state = app_state(request)
    text = req.model or req.name
    if not text:
        raise errors.model_required()
    objects = push_model(state.store, _parse(text), insecure=req.insecure, home=state.settings.home)
    return await _answer(request, objects, req.stream)
