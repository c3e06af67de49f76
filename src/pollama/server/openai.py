"""The OpenAI-compatible API (/v1/*), translated onto the native request core.

Each route turns the OpenAI body into a native request, runs it through run_chat /
run_generate / run_embed, and turns the native objects back into OpenAI's shapes: one JSON
object, or Server-Sent Events ending in `data: [DONE]`. Ollama's field mapping and defaults
(ollama-reference §2): temperature and top_p default to 1.0, max_tokens -> num_predict,
response_format -> format, reasoning_effort -> think, errors as {"error": {message, type,
param, code}}.

Beyond Ollama: `tool_choice` is honoured ("none" hides the tools, "required" and a named
function force a call through a grammar), and `num_ctx` / `options` in the body (the SDKs'
extra_body) set the context size and any native option.
"""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Body, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import ValidationError

from pollama.api.errors import APIError
from pollama.api.inference import ChatRequest, GenerateRequest
from pollama.engine import GrammarError, grammar_after_prefix
from pollama.names import InvalidName, ModelName
from pollama.server import prompts
from pollama.server.embed import inputs_of, normalize, run_embed
from pollama.server.native import combine_chat, combine_generate, lookup, run_chat, run_generate
from pollama.server.state import app_state
from pollama.server.streaming import StreamError, collect

router = APIRouter()

SSE = "text/event-stream"
FINGERPRINT = "fp_ollama"
REASONING = {"none": False, "minimal": "low", "low": "low", "medium": "medium", "high": "high", "max": "max",
             "xhigh": "max", "ultra": "max"}  # fmt: skip


def _json(obj: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                    media_type="application/json")  # fmt: skip


def _validation(exc: ValidationError) -> APIError:
    err = exc.errors()[0]
    msg = str(err.get("msg", "invalid request")).removeprefix("Value error, ")
    where = ".".join(str(p) for p in err.get("loc", ()))
    return APIError(400, msg if err.get("type", "").startswith("value_error") else f"{where}: {msg}")


# -- shared request mapping ------------------------------------------------------------------


def _options(body: dict[str, Any]) -> dict[str, Any]:
    """OpenAI sampling fields to native options (Ollama's defaults: temperature/top_p 1.0)."""
    extra = body.get("options")
    if extra is not None and not isinstance(extra, dict):
        raise APIError(400, "options must be a JSON object")
    opts: dict[str, Any] = dict(extra or {})
    opts["temperature"] = body["temperature"] if body.get("temperature") is not None else 1.0
    opts["top_p"] = body["top_p"] if body.get("top_p") is not None else 1.0
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        opts["num_predict"] = max_tokens
    for key in ("seed", "frequency_penalty", "presence_penalty", "num_ctx"):
        if body.get(key) is not None:
            opts[key] = body[key]
    stop = body.get("stop")
    if isinstance(stop, str):
        opts["stop"] = [stop]
    elif isinstance(stop, list):
        opts["stop"] = stop
    elif stop is not None:
        raise APIError(400, "stop must be a string or an array of strings")
    return opts


def _response_format(body: dict[str, Any]) -> Any:
    rf = body.get("response_format")
    if rf is None:
        return None
    kind = rf.get("type") if isinstance(rf, dict) else None
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        schema = (rf.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise APIError(400, "response_format.json_schema.schema must be a JSON object")
        return schema
    if kind == "text":
        return None
    raise APIError(400, f"invalid response_format type: {json.dumps(kind)}")


def _stream_flags(body: dict[str, Any]) -> tuple[bool, bool]:
    stream = body.get("stream") is True
    so = body.get("stream_options")
    return stream, bool(stream and isinstance(so, dict) and so.get("include_usage"))


def _usage(final: dict[str, Any]) -> dict[str, int]:
    p, c = final.get("prompt_eval_count", 0), final.get("eval_count", 0)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _finish_reason(done_reason: str | None, tool_calls: bool) -> str:
    if tool_calls and done_reason in ("stop", None):
        return "tool_calls"
    return "length" if done_reason == "length" else "stop"


def _sse(objects: AsyncIterator[dict[str, Any]]) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        try:
            async for obj in objects:
                yield b"data: " + orjson.dumps(obj) + b"\n\n"
        except StreamError as exc:
            err = {"error": {"message": exc.message, "type": "api_error", "param": None, "code": None}}
            yield b"data: " + orjson.dumps(err) + b"\n\n"
        finally:
            await objects.aclose()
        yield b"data: [DONE]\n\n"

    return StreamingResponse(body(), media_type=SSE)


# -- /v1/chat/completions ------------------------------------------------------------------


def _parts(content: Any) -> list[tuple[str, list[str] | None]]:
    """A message's content as (text, images) parts; every part becomes its own native message."""
    if content is None or isinstance(content, str):
        return [(content or "", None)]
    if not isinstance(content, list):
        raise APIError(400, "invalid message content type")
    out: list[tuple[str, list[str] | None]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            out.append((str(part.get("text", "")), None))
        elif kind == "image_url":
            url = part.get("image_url")
            url = url.get("url") if isinstance(url, dict) else url
            if not isinstance(url, str):
                raise APIError(400, "invalid image input")
            if url.startswith(("http://", "https://")):
                raise APIError(
                    400, "image URLs are not currently supported, please use base64 encoded data instead"
                )
            prefix, sep, data = url.partition(";base64,")
            if not sep or not prefix.startswith("data:"):
                raise APIError(400, "invalid image input")
            out.append(("", [data]))
        else:
            raise APIError(400, "invalid message content type")
    return out or [("", None)]


def _messages(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise APIError(400, "messages must be an array")
    if not raw:
        raise APIError(400, "[] is too short - 'messages'")
    names_by_id: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    for m in raw:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise APIError(400, "invalid message: each message needs a role")
        role = "system" if m["role"] == "developer" else m["role"]
        calls = []
        for i, call in enumerate(m.get("tool_calls") or []):
            fn = (call or {}).get("function") or {}
            args = fn.get("arguments", "{}")
            if isinstance(args, str):
                try:
                    args = json.loads(args or "{}")
                except ValueError as exc:
                    raise APIError(400, "invalid tool call arguments") from exc
            if not isinstance(args, dict):
                raise APIError(400, "invalid tool call arguments")
            calls.append(
                {
                    "id": call.get("id"),
                    "function": {"index": i, "name": fn.get("name", ""), "arguments": args},
                }
            )
            if call.get("id"):
                names_by_id[call["id"]] = fn.get("name", "")
        for j, (text, images) in enumerate(_parts(m.get("content"))):
            msg: dict[str, Any] = {"role": role, "content": text}
            if images:
                msg["images"] = images
            if j == 0:
                if calls:
                    msg["tool_calls"] = calls
                if isinstance(m.get("reasoning"), str):
                    msg["thinking"] = m["reasoning"]
                if role == "tool":
                    name = m.get("name") or names_by_id.get(m.get("tool_call_id") or "", "")
                    if name:
                        msg["tool_name"] = name
                    if m.get("tool_call_id"):
                        msg["tool_call_id"] = m["tool_call_id"]
            out.append(msg)
    return out


def _tool_grammar(tools: list[dict[str, Any]], only: str | None, tag: str) -> str:
    """GBNF that forces one call of one of `tools` (or of `only`), written the way the model's
    template writes calls (its tool tag, then {"name": ..., "arguments": {...}}), so the usual
    tool-call parser reads it back."""
    choices = []
    for tool in tools:
        fn = tool.get("function") or {}
        if only is not None and fn.get("name") != only:
            continue
        params = fn.get("parameters") or {"type": "object"}
        choices.append({
            "type": "object",
            "properties": {"name": {"const": fn.get("name", "")}, "arguments": params},
            "required": ["name", "arguments"],
        })  # fmt: skip
    if not choices:
        raise APIError(400, f"tool_choice names a function that is not in tools: {only}")
    schema = choices[0] if len(choices) == 1 else {"anyOf": choices}
    try:
        return grammar_after_prefix(schema, tag if tag and tag != "{" else "")
    except GrammarError as exc:
        raise APIError(400, f"invalid tool parameters schema: {exc}") from exc


def _think(body: dict[str, Any]) -> Any:
    effort = body.get("reasoning_effort")
    if effort is None and isinstance(body.get("reasoning"), dict):
        effort = body["reasoning"].get("effort")
    if effort is None:
        return None
    if effort not in REASONING:
        raise APIError(400, f"invalid reasoning effort: {json.dumps(effort)}")
    return REASONING[effort]


def _chat_request(body: dict[str, Any]) -> tuple[ChatRequest, Any]:
    tools = body.get("tools") or None
    choice = body.get("tool_choice")
    forced: str | bool | None = False  # False: no forcing; None: any tool; str: that tool
    if choice == "none":
        tools = None
    elif choice == "required":
        forced = None
    elif isinstance(choice, dict):
        forced = ((choice.get("function") or {}).get("name")) or ""
    elif choice not in (None, "auto"):
        raise APIError(400, f"invalid tool_choice: {json.dumps(choice)}")
    if forced is not False and not tools:
        raise APIError(400, "tool_choice requires tools")
    top = body.get("top_logprobs")
    native = {
        "model": body.get("model") or "",
        "messages": _messages(body.get("messages")),
        "stream": True,
        "format": _response_format(body),
        "options": _options(body),
        "tools": tools,
        "think": _think(body),
        "logprobs": bool(body.get("logprobs")),
        "top_logprobs": top if top is not None else 0,
        "keep_alive": body.get("keep_alive"),
    }
    try:
        return ChatRequest.model_validate(native), forced
    except ValidationError as exc:
        raise _validation(exc) from exc


def _chat_message(msg: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"role": "assistant", "content": msg.get("content", "")}
    if msg.get("thinking"):
        out["reasoning"] = msg["thinking"]
    if msg.get("tool_calls"):
        out["tool_calls"] = [
            {
                "id": call.get("id"),
                "index": i,
                "type": "function",
                "function": {
                    "name": call["function"]["name"],
                    "arguments": json.dumps(
                        call["function"]["arguments"], separators=(",", ":"), ensure_ascii=False
                    ),
                },
            }
            for i, call in enumerate(msg["tool_calls"])
        ]
    return out


@router.post("/v1/chat/completions")
async def chat_completions(request: Request, body: dict[str, Any] = Body(...)) -> Response:
    state = app_state(request)
    req, forced = _chat_request(body)
    stream, include_usage = _stream_flags(body)
    grammar = None
    if forced is not False:
        model = lookup(state, req.model, empty_status=400)
        if "tools" in model.capabilities:  # otherwise run_chat answers "does not support tools"
            tag = prompts.template_caps(model).tool_tag
            grammar = _tool_grammar([t.model_dump() for t in req.tools or []], forced, tag)
    result = await run_chat(state, req, grammar=grammar)
    cid = f"chatcmpl-{random.randint(0, 998)}"
    created = int(time.time())
    if isinstance(result, dict):  # load/unload: nothing generated
        result = _one(result)

    def envelope(obj_type: str) -> dict[str, Any]:
        return {"id": cid, "object": obj_type, "created": created, "model": req.model,
                "system_fingerprint": FINGERPRINT}  # fmt: skip

    if not stream:
        final = combine_chat(await collect(request, result))
        msg = final["message"]
        choice: dict[str, Any] = {
            "index": 0,
            "message": _chat_message(msg),
            "finish_reason": _finish_reason(final.get("done_reason"), bool(msg.get("tool_calls"))),
        }
        if final.get("logprobs"):
            choice["logprobs"] = {"content": final["logprobs"]}
        return _json({**envelope("chat.completion"), "choices": [choice], "usage": _usage(final)})

    async def chunks() -> AsyncIterator[dict[str, Any]]:
        saw_calls = False
        tool_index = 0
        try:
            async for obj in result:
                msg = obj.get("message") or {}
                deltas: list[dict[str, Any]] = []
                if msg.get("thinking"):
                    deltas.append({"role": "assistant", "content": "", "reasoning": msg["thinking"]})
                if msg.get("content") or obj.get("logprobs"):
                    deltas.append({"role": "assistant", "content": msg.get("content", "")})
                if msg.get("tool_calls"):
                    calls = _chat_message({"tool_calls": msg["tool_calls"]})["tool_calls"]
                    for call in calls:
                        call["index"] = tool_index
                        tool_index += 1
                    saw_calls = True
                    deltas.append({"role": "assistant", "content": "", "tool_calls": calls})
                for i, delta in enumerate(deltas):
                    choice = {"index": 0, "delta": delta, "finish_reason": None}
                    if i == len(deltas) - 1 and obj.get("logprobs"):
                        choice["logprobs"] = {"content": obj["logprobs"]}
                    yield {**envelope("chat.completion.chunk"), "choices": [choice]}
                if obj.get("done"):
                    reason = _finish_reason(obj.get("done_reason"), saw_calls)
                    yield {**envelope("chat.completion.chunk"),
                           "choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}  # fmt: skip
                    if include_usage:
                        yield {**envelope("chat.completion.chunk"), "choices": [], "usage": _usage(obj)}
        finally:
            await result.aclose()

    return _sse(chunks())


async def _one(obj: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    yield obj


# -- /v1/completions -----------------------------------------------------------------------


@router.post("/v1/completions")
async def completions(request: Request, body: dict[str, Any] = Body(...)) -> Response:
    state = app_state(request)
    prompt = body.get("prompt", "")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise APIError(400, "prompt must be a string")
    stream, include_usage = _stream_flags(body)
    logprobs = body.get("logprobs")
    if logprobs is not None and (isinstance(logprobs, bool) or not isinstance(logprobs, int)):
        raise APIError(400, "logprobs must be an integer")
    native = {
        "model": body.get("model") or "",
        "prompt": prompt,
        "suffix": body.get("suffix") or "",
        "stream": True,
        "options": _options(body),
        "logprobs": logprobs is not None,
        "top_logprobs": logprobs or 0,
        "keep_alive": body.get("keep_alive"),
        "format": _response_format(body),
    }
    try:
        req = GenerateRequest.model_validate(native)
    except ValidationError as exc:
        raise _validation(exc) from exc
    result = await run_generate(state, req)
    if isinstance(result, dict):
        result = _one(result)
    cid = f"cmpl-{random.randint(0, 998)}"
    created = int(time.time())

    def envelope() -> dict[str, Any]:
        return {"id": cid, "object": "text_completion", "created": created, "model": req.model,
                "system_fingerprint": FINGERPRINT}  # fmt: skip

    if not stream:
        final = combine_generate(await collect(request, result))
        choice: dict[str, Any] = {
            "text": final.get("response", ""),
            "index": 0,
            "finish_reason": _finish_reason(final.get("done_reason"), False),
        }
        if final.get("logprobs"):
            choice["logprobs"] = {"content": final["logprobs"]}
        return _json({**envelope(), "choices": [choice], "usage": _usage(final)})

    async def chunks() -> AsyncIterator[dict[str, Any]]:
        try:
            async for obj in result:
                done = bool(obj.get("done"))
                if not done and not obj.get("response") and not obj.get("logprobs"):
                    continue
                choice: dict[str, Any] = {
                    "text": obj.get("response", ""),
                    "index": 0,
                    "finish_reason": _finish_reason(obj.get("done_reason"), False) if done else None,
                }
                if obj.get("logprobs"):
                    choice["logprobs"] = {"content": obj["logprobs"]}
                yield {**envelope(), "choices": [choice]}
                if done and include_usage:
                    yield {**envelope(), "choices": [], "usage": _usage(obj)}
        finally:
            await result.aclose()

    return _sse(chunks())


# -- /v1/embeddings ------------------------------------------------------------------------


@router.post("/v1/embeddings")
async def embeddings(request: Request, body: dict[str, Any] = Body(...)) -> Response:
    raw = body.get("input")
    if raw == "":
        raw = [""]
    if raw is None or raw == []:
        raise APIError(400, "invalid input")
    inputs = inputs_of(raw)
    fmt = body.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise APIError(
            400, f"Invalid value for 'encoding_format' = {fmt}. Supported values: ['float', 'base64']."
        )
    dims = body.get("dimensions") or 0
    if not isinstance(dims, int) or isinstance(dims, bool) or dims < 0:
        raise APIError(400, "dimensions must be a positive integer")
    result = await run_embed(app_state(request), body.get("model") or "", inputs,
                             keep_alive=body.get("keep_alive"), options=body.get("options"))  # fmt: skip
    data = []
    for i, v in enumerate(result.vectors):
        vec = normalize(v, dims).astype("<f4")
        emb: Any = base64.b64encode(vec.tobytes()).decode() if fmt == "base64" else vec
        data.append({"object": "embedding", "embedding": emb, "index": i})
    usage = {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens}
    return _json({"object": "list", "data": data, "model": body.get("model"), "usage": usage})


# -- /v1/models ----------------------------------------------------------------------------


def _model_entry(m: Any, model_id: str | None = None) -> dict[str, Any]:
    return {"id": model_id or m.name.display, "object": "model", "created": int(m.modified_at.timestamp()),
            "owned_by": m.name.namespace}  # fmt: skip


@router.get("/v1/models")
async def list_models(request: Request) -> Response:
    store = app_state(request).store
    return _json({"object": "list", "data": [_model_entry(m) for m in store.list()]})


@router.get("/v1/models/{model:path}")
async def get_model(model: str, request: Request) -> Response:
    store = app_state(request).store
    try:
        found = store.resolve(ModelName.parse(model))
    except InvalidName:
        found = None
    if found is None:
        raise APIError(404, f"model '{model}' not found")
    return _json(_model_entry(found, model))


__all__ = ["router"]
