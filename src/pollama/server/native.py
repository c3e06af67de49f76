"""Ollama's native inference routes: /, /api/version, /api/generate, /api/chat, /api/ps."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from pollama import OLLAMA_COMPAT_VERSION, __version__
from pollama.api import errors
from pollama.api.errors import APIError
from pollama.api.inference import ChatRequest, GenerateRequest
from pollama.api.options import DEFAULT_OPTIONS, Options
from pollama.config import DurationError, keep_alive_seconds
from pollama.engine import (
    Chunk,
    ContextLengthExceeded,
    Done,
    GenerationRequest,
    GrammarError,
    ImageError,
    SamplingParams,
    grammar_for_format,
)
from pollama.names import InvalidName, ModelName
from pollama.scheduler import Lease
from pollama.server import prompts
from pollama.server.chat_output import ChatOutput
from pollama.server.state import AppState, app_state
from pollama.server.streaming import json_response, now_rfc3339, open_stream, respond

router = APIRouter()


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
async def root() -> Response:
    return PlainTextResponse("Ollama is running")


@router.api_route("/api/version", methods=["GET", "HEAD"])
async def version() -> Response:
    return json_response({"version": OLLAMA_COMPAT_VERSION, "pollama_version": __version__})


# -- shared request plumbing ---------------------------------------------------------------


def parse_keep_alive(value: Any, default: float) -> float:
    try:
        return keep_alive_seconds(value, default)
    except DurationError as exc:
        raise APIError(400, str(exc)) from exc


def lookup(state: AppState, text: str, *, empty_status: int = 404) -> Any:
    """Resolve a request's model name to an installed model, with Ollama's errors."""
    if not text:
        if empty_status == 404:
            raise errors.model_not_found("")
        raise errors.model_required()
    try:
        name = ModelName.parse(text)
    except InvalidName as exc:
        raise errors.invalid_model_name() from exc
    model = state.store.resolve(name)
    if model is None:
        raise errors.model_not_found(text)
    return model


def check_common(req: GenerateRequest | ChatRequest, model: Any) -> None:
    caps = model.capabilities
    if model.model_path is not None and "completion" not in caps and "embedding" not in caps:
        # The GGUF header could not be read (Ollama then says "does not support generate")
        raise APIError(
            500,
            f"failed to load model {model.name.display}: the model file is not a valid GGUF file "
            "(corrupt or truncated?)",
        )
    if not 0 <= req.top_logprobs <= 20:
        raise APIError(400, "top_logprobs must be between 0 and 20")
    if req.think and "thinking" not in caps:
        raise errors.does_not_support(req.model, "thinking", quoted=True)


def sampling_from(options: Options) -> SamplingParams:
    return SamplingParams(
        temperature=options.temperature,
        top_k=options.top_k,
        top_p=options.top_p,
        min_p=options.min_p,
        typical_p=options.typical_p,
        repeat_last_n=options.repeat_last_n,
        repeat_penalty=options.repeat_penalty,
        presence_penalty=options.presence_penalty,
        frequency_penalty=options.frequency_penalty,
        seed=options.seed,
    )


def grammar_of(req: GenerateRequest | ChatRequest) -> str | None:
    try:
        return grammar_for_format(req.format)
    except GrammarError as exc:
        raise APIError(400, str(exc)) from exc


def generation_request(
    tokens: list[int],
    options: Options,
    req: GenerateRequest | ChatRequest,
    grammar: str | None,
    images: tuple = (),
) -> GenerationRequest:
    return GenerationRequest(
        grammar=grammar,
        prompt=tokens,
        images=images,
        sampling=sampling_from(options),
        num_predict=options.num_predict,
        stop=options.stop,
        num_keep=options.num_keep,
        shift=req.shift,
        truncate=req.truncate,
        logprobs=req.logprobs or req.top_logprobs > 0,
        top_logprobs=req.top_logprobs,
    )


async def tokenize(lease: Lease, text: str, *, add_special: bool = True) -> list[int]:
    model = lease.engine.model
    if len(text) < 8192:
        return model.tokenize(text, add_special=add_special)
    return await asyncio.to_thread(model.tokenize, text, add_special=add_special)


async def prompt_tokens(
    lease: Lease,
    text: str,
    images: list[str] | None,
    *,
    add_special: bool = True,
    prefix: tuple[int, ...] = (),
) -> tuple[list[int], tuple]:
    """The prompt's tokens and, where its `[img-N]` markers name images (base64, already
    validated), the images encoded by the model's projector."""
    parts = prompts.image_parts(text, [base64.b64decode(i) for i in images]) if images else [text]
    if all(isinstance(p, str) for p in parts):
        return [*prefix, *await tokenize(lease, text, add_special=add_special)], ()
    try:
        return await asyncio.to_thread(
            lease.engine.tokenize_multimodal, parts, add_special=add_special, prefix=prefix
        )
    except ImageError as exc:
        raise APIError(400, str(exc)) from exc


def submit(lease: Lease, request: GenerationRequest):
    try:
        return lease.engine.submit(request)
    except (ContextLengthExceeded, GrammarError) as exc:
        lease.release()
        raise APIError(400, str(exc)) from exc
    except BaseException:
        lease.release()
        raise


def metrics(done: Done, started_ns: int, lease: Lease) -> dict[str, Any]:
    return {
        "total_duration": time.perf_counter_ns() - started_ns,
        "load_duration": lease.load_duration_ns,
        "prompt_eval_count": done.prompt_eval_count,
        "prompt_eval_duration": done.prompt_eval_duration,
        "eval_count": done.eval_count,
        "eval_duration": done.eval_duration,
    }


def logprobs_json(lease: Lease, chunk: Chunk) -> list[dict[str, Any]]:
    """Ollama's logprobs entries: token text, logprob, UTF-8 bytes, and the top alternatives."""
    model = lease.engine.model

    def one(lp) -> dict[str, Any]:
        text = model.token_text(lp.token)
        return {"token": text, "logprob": lp.logprob, "bytes": list(text.encode())}

    return [{**one(chosen), "top_logprobs": [one(a) for a in alts]} for chosen, alts in chunk.logprobs or ()]


def load_object(req_model: str, reason: str, chat: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": req_model, "created_at": now_rfc3339()}
    if chat:
        body["message"] = {"role": "assistant", "content": ""}
    else:
        body["response"] = ""
    body.update(done=True, done_reason=reason)
    return body


# -- /api/generate -------------------------------------------------------------------------


def combine_generate(parts: list[dict[str, Any]]) -> dict[str, Any]:
    final = dict(parts[-1])
    final["response"] = "".join(p.get("response", "") for p in parts)
    thinking = "".join(p.get("thinking", "") for p in parts)
    if thinking:
        final["thinking"] = thinking
    lps = [lp for p in parts for lp in p.get("logprobs", ())]
    if lps:
        final["logprobs"] = lps
    return final


async def run_generate(
    state: AppState, req: GenerateRequest
) -> dict[str, Any] | AsyncIterator[dict[str, Any]]:
    """A generate request, up to its stream of native response objects (or one immediate object)."""
    started = time.perf_counter_ns()
    keep_alive = parse_keep_alive(req.keep_alive, state.settings.keep_alive)
    model = lookup(state, req.model)
    if not req.prompt and keep_alive == 0:  # before the capability checks, as in Ollama: any model unloads
        await state.scheduler.unload(model)
        return load_object(req.model, "unload", chat=False)
    if req.raw and (req.template or req.system or req.context):
        raise APIError(400, "raw mode does not support template, system, or context")
    check_common(req, model)
    caps = model.capabilities
    if "completion" not in caps:
        raise errors.does_not_support(req.model, "generate", quoted=True)
    if req.suffix and "insert" not in caps:
        raise errors.does_not_support(str(model.name), "insert")
    if req.images and "vision" not in caps:
        raise errors.does_not_support(str(model.name), "vision")

    options = DEFAULT_OPTIONS.merged(model.params).merged(req.options)
    grammar = grammar_of(req)
    think = prompts.effective_think(req, caps)
    text = req.prompt if req.raw else prompts.render_generate(model, req, think)
    if req.debug_render_only:
        return prompts.debug_response(req.model, text, req.images)

    lease = await state.scheduler.acquire(model, options, keep_alive)
    if not req.prompt and not req.suffix:
        lease.release()
        return load_object(req.model, "load", chat=False)
    try:
        if req.context:
            n_vocab = lease.engine.model.n_vocab
            bad = next((t for t in req.context if not 0 <= t < n_vocab), None)
            if bad is not None:
                raise APIError(400, f"invalid token id in context: {bad}")
            tokens, images = await prompt_tokens(
                lease, text, req.images, add_special=False, prefix=tuple(req.context)
            )
        else:
            tokens, images = await prompt_tokens(lease, text, req.images)
    except BaseException:
        lease.release()
        raise
    gen = submit(lease, generation_request(tokens, options, req, grammar, images))
    tags = prompts.template_caps(model)
    split = ChatOutput(
        think_tags=(tags.think_open, tags.think_close) if think and tags.thinking and not req.raw else None,
        prompt=text,
        tools=None,
        tool_tag="",
    )

    def shape(event: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if isinstance(event, Chunk | Done):
            thinking, content, _ = split.add(event.text) if event.text else ("", "", [])
            if isinstance(event, Done):
                more_thinking, more_content, _ = split.flush()
                thinking, content = thinking + more_thinking, content + more_content
            lps = logprobs_json(lease, event) if isinstance(event, Chunk) and event.logprobs else None
            if content or thinking or lps:
                piece: dict[str, Any] = {"model": req.model, "created_at": now_rfc3339(), "response": content}
                if thinking:
                    piece["thinking"] = thinking
                piece["done"] = False
                if lps:
                    piece["logprobs"] = lps
                out.append(piece)
        if isinstance(event, Done):
            final: dict[str, Any] = {
                "model": req.model,
                "created_at": now_rfc3339(),
                "response": "",
                "done": True,
                "done_reason": event.reason,
            }
            if not req.raw:
                final["context"] = event.context
            final.update(metrics(event, started, lease))
            out.append(final)
        return out

    return await open_stream(lease, gen, shape)


@router.post("/api/generate")
async def generate(req: GenerateRequest, request: Request) -> Response:
    result = await run_generate(app_state(request), req)
    if isinstance(result, dict):
        return json_response(result)
    return await respond(request, result, stream=req.stream, combine=combine_generate)


# -- /api/chat -----------------------------------------------------------------------------


def combine_chat(parts: list[dict[str, Any]]) -> dict[str, Any]:
    final = dict(parts[-1])
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(p["message"].get("content", "") for p in parts),
    }
    thinking = "".join(p["message"].get("thinking", "") for p in parts)
    if thinking:
        message["thinking"] = thinking
    calls = [c for p in parts for c in p["message"].get("tool_calls", ())]
    if calls:
        message["tool_calls"] = calls
    final["message"] = message
    lps = [lp for p in parts for lp in p.get("logprobs", ())]
    if lps:
        final["logprobs"] = lps
    return final


async def run_chat(
    state: AppState, req: ChatRequest, *, grammar: str | None = None
) -> dict[str, Any] | AsyncIterator[dict[str, Any]]:
    """A chat request, up to its stream of native response objects (or one immediate object).

    `grammar` (GBNF) replaces the one derived from `req.format`: the OpenAI layer uses it to
    force a tool call for `tool_choice`.
    """
    started = time.perf_counter_ns()
    keep_alive = parse_keep_alive(req.keep_alive, state.settings.keep_alive)
    model = lookup(state, req.model, empty_status=400)
    check_common(req, model)
    caps = model.capabilities
    if "completion" not in caps:
        raise errors.does_not_support(req.model, "chat", quoted=True)
    if req.tools and "tools" not in caps:
        raise errors.does_not_support(str(model.name), "tools")
    if any(m.images for m in req.messages) and "vision" not in caps:
        raise errors.does_not_support(str(model.name), "vision")
    if not req.messages and keep_alive == 0:
        await state.scheduler.unload(model)
        return load_object(req.model, "unload", chat=True)

    options = DEFAULT_OPTIONS.merged(model.params).merged(req.options)
    grammar = grammar or grammar_of(req)
    think = prompts.effective_think(req, caps)
    lease = await state.scheduler.acquire(model, options, keep_alive)
    if not req.messages:
        lease.release()
        return load_object(req.model, "load", chat=True)
    try:
        llm = lease.engine.model
        jinja_source = llm.chat_template if model.template is None else None

        def count(text: str) -> int:
            return len(llm.tokenize(text))

        text, images = prompts.render_chat(
            model,
            req,
            think=think,
            count_tokens=count if req.truncate else None,
            num_ctx=lease.loaded.config.num_ctx,
            jinja_source=jinja_source,
        )
        if req.debug_render_only:
            lease.release()
            return prompts.debug_response(req.model, text, images, chat=True)
        tokens, encoded = await prompt_tokens(lease, text, images)
        tags = prompts.template_caps(model, jinja_source)
    except BaseException:
        lease.release()
        raise
    gen = submit(lease, generation_request(tokens, options, req, grammar, encoded))
    split = ChatOutput(
        think_tags=(tags.think_open, tags.think_close) if think and tags.thinking else None,
        prompt=text,
        tools=[t.model_dump() for t in req.tools] if req.tools else None,
        tool_tag=tags.tool_tag,
    )

    def message(content: str, thinking: str, calls: list[dict[str, Any]]) -> dict[str, Any]:
        msg: dict[str, Any] = {"role": "assistant", "content": content}
        if thinking:
            msg["thinking"] = thinking
        if calls:
            msg["tool_calls"] = calls
        return msg

    def shape(event: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if isinstance(event, Chunk | Done):
            thinking, content, calls = split.add(event.text) if event.text else ("", "", [])
            if isinstance(event, Done):
                more_thinking, more_content, more_calls = split.flush()
                thinking, content, calls = (
                    thinking + more_thinking,
                    content + more_content,
                    calls + more_calls,
                )
            lps = logprobs_json(lease, event) if isinstance(event, Chunk) and event.logprobs else None
            if content or thinking or calls or lps:
                piece: dict[str, Any] = {
                    "model": req.model,
                    "created_at": now_rfc3339(),
                    "message": message(content, thinking, calls),
                    "done": False,
                }
                if lps:
                    piece["logprobs"] = lps
                out.append(piece)
        if isinstance(event, Done):
            final: dict[str, Any] = {
                "model": req.model,
                "created_at": now_rfc3339(),
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": event.reason,
            }
            final.update(metrics(event, started, lease))
            out.append(final)
        return out

    return await open_stream(lease, gen, shape)


@router.post("/api/chat")
async def chat(req: ChatRequest, request: Request) -> Response:
    result = await run_chat(app_state(request), req)
    if isinstance(result, dict):
        return json_response(result)
    return await respond(request, result, stream=req.stream, combine=combine_chat)


# -- /api/ps -------------------------------------------------------------------------------


@router.get("/api/ps")
async def ps(request: Request) -> Response:
    state = app_state(request)
    models = []
    for entry in state.scheduler.running():
        m = entry.model
        models.append(
            {
                "name": m.name.display,
                "model": m.name.display,
                "size": entry.size,
                "digest": m.digest,
                "details": m.details(),
                "expires_at": entry.expires_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                if entry.expires_at
                else None,
                "size_vram": 0,
                "context_length": entry.config.num_ctx,
            }
        )
    return json_response({"models": models})
