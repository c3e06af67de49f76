"""From a request and an installed model to the prompt text, as Ollama assembles it.

Chat history = the model's MESSAGE layer + the request's messages, with the model's SYSTEM
put first when the request does not start with a system message. Templates are parsed
once per distinct source text.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from pollama.api.errors import APIError
from pollama.api.inference import ChatRequest, GenerateRequest
from pollama.prompt import render
from pollama.prompt.gotemplate import Template, TemplateError

DEFAULT_TEMPLATE = "{{ .Prompt }}"


@lru_cache(maxsize=64)
def parse_template(source: str) -> Template:
    try:
        return Template.parse(source)
    except TemplateError as exc:
        raise APIError(400, f"template error: {exc}") from exc


def _execute(fn: Callable[[], str]) -> str:
    try:
        return fn()
    except TemplateError as exc:
        raise APIError(400, f"template error: {exc}") from exc


def render_generate(model: Any, req: GenerateRequest) -> str:
    template = parse_template(req.template or model.template or DEFAULT_TEMPLATE)
    system = req.system if req.system is not None else model.system
    return _execute(
        lambda: render.render_generate(
            template, prompt=req.prompt, system=system, suffix=req.suffix or None, think=req.think
        )
    )


def chat_messages(model: Any, req: ChatRequest) -> list[dict[str, Any]]:
    messages = [dict(m) for m in model.messages or ()]
    request_messages = [m.wire() for m in req.messages]
    if model.system and not (request_messages and request_messages[0].get("role") == "system"):
        messages.insert(0, {"role": "system", "content": model.system})
    return messages + request_messages


def render_chat(
    model: Any, req: ChatRequest, *, count_tokens: Callable[[str], int] | None, num_ctx: int
) -> str:
    template = parse_template(model.template or DEFAULT_TEMPLATE)
    messages = chat_messages(model, req)
    tools = [t.model_dump() for t in req.tools] if req.tools else None
    if count_tokens is None:
        return _execute(lambda: render.render_chat(template, messages, tools=tools, think=req.think))
    text, _dropped = _execute_fit(template, messages, count_tokens, num_ctx, tools, req.think)
    return text


def _execute_fit(template, messages, count_tokens, num_ctx, tools, think) -> tuple[str, int]:
    try:
        return render.fit_chat(template, messages, count_tokens, num_ctx, tools=tools, think=think)
    except TemplateError as exc:
        raise APIError(400, f"template error: {exc}") from exc


def debug_response(req_model: str, text: str, images: list[str] | None, *, chat: bool = False) -> dict[str, Any]:
    """`_debug_render_only`: the rendered prompt, without running the model (as Ollama)."""
    return {
        "model": req_model,
        "created_at": "",
        **({"message": {"role": "assistant", "content": ""}} if chat else {"response": ""}),
        "done": False,
        "_debug_info": {"rendered_template": text, "image_count": len(images or ())},
    }
