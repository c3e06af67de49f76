"""Which capabilities a model has, following Ollama's Model.Capabilities() (server/images.go)."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from pollama.store.gguf_meta import GGUFError, read_gguf

if TYPE_CHECKING:
    from pollama.store.model import LocalModel

log = logging.getLogger(__name__)

DEFAULT_TEMPLATE = "{{ .Prompt }}"
_THINK_TAGS = re.compile(r"<(think|thinking|thought)>", re.IGNORECASE)


def template_capabilities(template: str) -> list[str]:
    """tools / insert / thinking from a Go template. One place to switch to pollama.prompt."""
    from pollama.prompt.capabilities import go_template_capabilities
    from pollama.prompt.errors import TemplateError
    from pollama.prompt.gotemplate import Template

    try:
        return go_template_capabilities(Template.parse(template)).names()
    except TemplateError:
        return []


def model_capabilities(model: LocalModel) -> list[str]:
    caps: list[str] = []
    if model.model_path is not None:
        try:
            kv = read_gguf(model.model_path, max_array=0).kv
        except GGUFError as e:
            log.error("couldn't open model file %s: %s", model.model_path, e)
        else:
            arch = kv.get("general.architecture", "")
            caps.append("embedding" if f"{arch}.pooling_type" in kv else "completion")
            if f"{arch}.vision.block_count" in kv:
                caps.append("vision")
    else:
        caps.extend(str(c) for c in model.config.get("capabilities") or [])
    for cap in template_capabilities(model.template or DEFAULT_TEMPLATE):
        if cap == "thinking":
            continue  # Ollama checks thinking last, after vision
        caps.append(cap)
    if model.projector_paths and "vision" not in caps:
        caps.append("vision")
    family = model.config.get("model_family", "")
    thinking = "thinking" in template_capabilities(model.template or DEFAULT_TEMPLATE)
    if "thinking" not in caps and (thinking or family in ("gptoss", "gpt-oss")):
        caps.append("thinking")
    return caps
