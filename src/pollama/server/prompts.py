"""From a request and an installed model to the prompt text, as Ollama assembles it.

Chat history = the model's MESSAGE layer + the request's messages, with the model's SYSTEM
put first when the request does not start with a system message. A model with a TEMPLATE
layer renders through the Go template; one without it but with a GGUF chat template
renders through that jinja template (sandboxed); otherwise the text passes as is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from pollama.api.errors import APIError
from pollama.api.inference import ChatRequest, GenerateRequest
from pollama.prompt import render
from pollama.prompt.capabilities import Capabilities, go_template_capabilities, jinja_template_capabilities
from pollama.prompt.errors import TemplateError
from pollama.prompt.jinja import render_jinja_chat
from pollama.prompt.thinking import strip_thinking_from_history

DEFAULT_TEMPLATE = "{{ .Prompt }}"
IMAGE_TOKENS = 768  # what Ollama counts per image when fitting history (a model with a projector)
_IMAGE_TAG = re.compile(r"\[img-(\d+)\]")


def _template_error(exc: TemplateError) -> APIError:
    return APIError(400, f"template error: {exc}")


@lru_cache(maxsize=64)
def _go_caps(source: str) -> Capabilities:
    return go_template_capabilities(source)


def template_caps(model: Any, jinja_source: str | None = None) -> Capabilities:
    """Thinking tags and tool-call tag of the template this model's chats render through."""
    try:
        if model.template is None and jinja_source:
            return jinja_template_capabilities(jinja_source)
        return _go_caps(model.template or DEFAULT_TEMPLATE)
    except TemplateError as exc:
        raise _template_error(exc) from exc


def effective_think(req: GenerateRequest | ChatRequest, caps: list[str]) -> bool | str | None:
    """Ollama: `think` defaults to true for models with the thinking capability."""
    if req.think is None and "thinking" in caps:
        return True
    return req.think


def render_generate(model: Any, req: GenerateRequest, think: bool | str | None) -> str:
    system = req.system if req.system is not None else model.system
    try:
        return render.render_generate(
            req.template or model.template or DEFAULT_TEMPLATE,
            prompt=req.prompt,
            system=system,
            suffix=req.suffix or None,
            think=think,
            images=req.images,
            history=None if req.context else model.messages,
        )
    except TemplateError as exc:
        raise _template_error(exc) from exc


def chat_messages(model: Any, req: ChatRequest) -> list[dict[str, Any]]:
    messages = [dict(m) for m in model.messages or ()]
    request_messages = [m.wire() for m in req.messages]
    if model.system and not (request_messages and request_messages[0].get("role") == "system"):
        messages.insert(0, {"role": "system", "content": model.system})
    return strip_thinking_from_history(messages + request_messages)


def render_chat(
    model: Any,
    req: ChatRequest,
    *,
    think: bool | str | None,
    count_tokens: Callable[[str], int] | None,
    num_ctx: int,
    jinja_source: str | None = None,
) -> tuple[str, list[Any]]:
    """The chat prompt and the images it sends (indexed as its `[img-N]` markers); with
    `count_tokens`, the oldest messages are dropped until it fits num_ctx."""
    messages = chat_messages(model, req)
    tools = [t.model_dump() for t in req.tools] if req.tools else None
    image_tokens = IMAGE_TOKENS if model.projector_paths else 0
    try:
        if model.template is None and jinja_source:

            def jinja(msgs: list[dict[str, Any]]) -> str:
                return render_jinja_chat(jinja_source, msgs, tools=tools, think=think)

            system: list[dict[str, Any]] = []
            tail = messages
            if count_tokens is not None:
                system, tail, _ = render.fit_messages(
                    messages, jinja, count_tokens, num_ctx, image_tokens=image_tokens
                )
            return jinja(system + render.with_image_tags(tail)), render.message_images(tail)
        template = model.template or DEFAULT_TEMPLATE
        if count_tokens is None:
            text = render.render_chat(template, messages, tools=tools, think=think)
            return text, render.message_images(messages)
        text, _dropped, images = render.fit_chat(
            template, messages, count_tokens, num_ctx, tools=tools, think=think, image_tokens=image_tokens
        )
        return text, images
    except TemplateError as exc:
        raise _template_error(exc) from exc


def image_parts(text: str, images: Sequence[bytes]) -> list[str | bytes]:
    """The prompt split at its `[img-N]` markers into text and the N-th image's bytes, as
    Ollama's runner reads them. A marker naming no image of the request stays text."""
    parts: list[str | bytes] = []
    pos = 0
    for m in _IMAGE_TAG.finditer(text):
        index = int(m.group(1))
        if index < len(images):
            parts += [text[pos : m.start()], images[index]]
            pos = m.end()
    parts.append(text[pos:])
    return [p for p in parts if len(p)]


def debug_response(
    req_model: str, text: str, images: list[str] | None, *, chat: bool = False
) -> dict[str, Any]:
    """`_debug_render_only`: the rendered prompt, without running the model (as Ollama)."""
    return {
        "model": req_model,
        "created_at": "",
        **({"message": {"role": "assistant", "content": ""}} if chat else {"response": ""}),
        "done": False,
        "_debug_info": {"rendered_template": text, "image_count": len(images or ())},
    }
