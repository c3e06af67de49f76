"""Embedding routes: POST /api/embed (batch, L2-normalized) and the legacy POST /api/embeddings.

`run_embed` is the shared core (the OpenAI /v1/embeddings route uses it too): resolve the
model, check it can embed, load it through the scheduler, tokenize and length-check every
input, and embed them all in one engine call (one llama_decode for a typical batch).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import Field

from pollama.api import errors
from pollama.api.errors import APIError
from pollama.api.inference import Wire
from pollama.api.options import DEFAULT_OPTIONS
from pollama.engine import EngineError
from pollama.names import InvalidName, ModelName
from pollama.server.native import parse_keep_alive
from pollama.server.state import AppState, app_state

router = APIRouter()


class EmbedRequest(Wire):
    model: str = ""
    input: Any = None  # a string or a list of strings; checked by inputs_of
    truncate: bool = True
    dimensions: int = 0
    keep_alive: float | int | str | None = None
    options: dict[str, Any] | None = None


class EmbeddingsRequest(Wire):
    model: str = ""
    prompt: str = ""
    keep_alive: float | int | str | None = None
    options: dict[str, Any] | None = Field(default=None)


@dataclass
class EmbedResult:
    vectors: list[np.ndarray]  # float32, as pooled (not normalized)
    prompt_tokens: int
    load_duration_ns: int


def inputs_of(value: Any) -> list[str]:
    """Ollama's rules: "" or null is no input; a list must hold only strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise APIError(400, "invalid input type")


def resolve_embed_model(state: AppState, text: str) -> Any:
    if not text:
        raise errors.model_required()
    try:
        name = ModelName.parse(text)
    except InvalidName as exc:
        raise errors.invalid_model_name() from exc
    model = state.store.resolve(name)
    if model is None:
        raise errors.model_not_found_pull(text)
    if "embedding" not in model.capabilities:
        raise errors.does_not_support(str(model.name), "embedding")
    return model


async def run_embed(
    state: AppState,
    model_name: str,
    inputs: list[str],
    *,
    truncate: bool = True,
    keep_alive: Any = None,
    options: dict[str, Any] | None = None,
) -> EmbedResult:
    """Embed `inputs` (possibly none: then the model is only loaded)."""
    keep = parse_keep_alive(keep_alive, state.settings.keep_alive)
    model = resolve_embed_model(state, model_name)
    opts = DEFAULT_OPTIONS.merged(model.params).merged(options)
    lease = await state.scheduler.acquire(model, opts, keep)
    try:
        if not inputs:
            return EmbedResult([], 0, lease.load_duration_ns)
        engine = lease.engine
        num_ctx = lease.loaded.config.num_ctx
        llm = engine.model
        if sum(len(t) for t in inputs) > 8192:
            batches = await asyncio.to_thread(lambda: [llm.tokenize(t) for t in inputs])
        else:
            batches = [llm.tokenize(t) for t in inputs]
        batches = [_fit(tokens, num_ctx, truncate, llm) for tokens in batches]
        try:
            result = await engine.embed(batches)
        except EngineError as exc:
            raise APIError(500, str(exc)) from exc
        for v in result.vectors:
            if not np.all(np.isfinite(v)):
                raise APIError(500, "embedding contains NaN or Inf values")
        return EmbedResult(result.vectors, result.prompt_tokens, lease.load_duration_ns)
    finally:
        lease.release()


def _fit(tokens: list[int], num_ctx: int, truncate: bool, llm: Any) -> list[int]:
    """An input longer than the context is cut (keeping its final separator) or refused."""
    if not tokens:
        raise APIError(400, "input is empty after tokenization")
    if len(tokens) <= num_ctx:
        return tokens
    if not truncate:
        raise APIError(400, "the input length exceeds the context length")
    last = tokens[-1]
    if llm.is_control(last):
        return [*tokens[: num_ctx - 1], last]
    return tokens[:num_ctx]


def normalize(v: np.ndarray, dimensions: int = 0) -> np.ndarray:
    """L2-normalize, after cutting to `dimensions` when that is shorter (Ollama's rule)."""
    if 0 < dimensions < len(v):
        v = v[:dimensions]
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def numpy_json(obj: Any) -> Response:
    """float32 vectors printed in their shortest float32 form, as Go prints []float32."""
    return Response(
        orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY),
        media_type="application/json; charset=utf-8",
    )


@router.post("/api/embed")
async def embed(req: EmbedRequest, request: Request) -> Response:
    started = time.perf_counter_ns()
    inputs = inputs_of(req.input)
    if req.dimensions < 0:
        raise APIError(400, "dimensions must be a positive integer")
    state = app_state(request)
    result = await run_embed(
        state, req.model, inputs, truncate=req.truncate, keep_alive=req.keep_alive, options=req.options
    )
    body: dict[str, Any] = {
        "model": req.model,
        "embeddings": [normalize(v, req.dimensions).astype(np.float32) for v in result.vectors],
    }
    if inputs:
        body.update(
            total_duration=time.perf_counter_ns() - started,
            load_duration=result.load_duration_ns,
            prompt_eval_count=result.prompt_tokens,
        )
    return numpy_json(body)


@router.post("/api/embeddings")
async def embeddings(req: EmbeddingsRequest, request: Request) -> Response:
    state = app_state(request)
    if not req.model:
        raise errors.model_required()
    result = await run_embed(
        state, req.model, [req.prompt] if req.prompt else [], keep_alive=req.keep_alive, options=req.options
    )
    vector = [float(x) for x in result.vectors[0]] if result.vectors else []  # float64, not normalized
    return numpy_json({"embedding": vector})
