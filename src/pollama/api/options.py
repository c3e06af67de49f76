"""Ollama's `options` object: names, types, defaults, and how layers of them merge.

Precedence (lowest first): built-in defaults < the model's PARAMETER layer < the request's
`options`. Unknown keys are ignored with a warning and the options Ollama removed in
v0.6.9 are ignored silently, as Ollama does; a value of the wrong type is a 400 here
(Ollama answers 500), because it is the client's mistake.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, fields, replace
from typing import Any

from pollama.api.errors import APIError

log = logging.getLogger("pollama.options")

DEPRECATED = frozenset(
    {
        "mirostat",
        "mirostat_tau",
        "mirostat_eta",
        "penalize_newline",
        "low_vram",
        "f16_kv",
        "logits_all",
        "vocab_only",
        "use_mlock",
        "numa",
        "tfs_z",
    }
)

MAX_NUM_CTX = 1 << 20  # beyond any model's trained context; refuse before allocating
MAX_NUM_BATCH = 8192
MAX_NUM_THREAD = 512


@dataclass(frozen=True)
class Options:
    num_keep: int = 4
    seed: int = -1
    num_predict: int = -1
    top_k: int = 40
    top_p: float = 0.9
    min_p: float = 0.0
    typical_p: float = 1.0
    repeat_last_n: int = 64
    temperature: float = 0.8
    repeat_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    stop: tuple[str, ...] = ()
    num_ctx: int = 0  # 0: OLLAMA_CONTEXT_LENGTH or the default
    num_batch: int = 512
    num_gpu: int = -1
    main_gpu: int = 0
    use_mmap: bool | None = None
    num_thread: int = 0
    draft_num_predict: int = 4

    def merged(self, overrides: dict[str, Any] | None) -> Options:
        """A copy with `overrides` (a params layer or request options) applied and checked."""
        if not overrides:
            return self
        if not isinstance(overrides, dict):
            raise APIError(400, "options must be a JSON object")
        changes: dict[str, Any] = {}
        for key, value in overrides.items():
            if key in DEPRECATED:
                continue
            kind = _TYPES.get(key)
            if kind is None:
                log.warning("invalid option provided: %s", key)
                continue
            if value is None:
                continue
            changes[key] = _coerce(key, kind, value)
        out = replace(self, **changes)
        _check_ranges(out)
        return out


_TYPES: dict[str, str] = {}
for _f in fields(Options):
    _TYPES[_f.name] = {"int": "integer", "float": "float", "bool | None": "bool", "tuple[str, ...]": "array"}[
        str(_f.type)
    ]


def _coerce(key: str, kind: str, value: Any) -> Any:
    if kind == "array":
        if isinstance(value, str):
            raise APIError(400, f'option "{key}" must be of type array')
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise APIError(400, f'option "{key}" must be of type array of strings')
        return tuple(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise APIError(400, f'option "{key}" must be of type boolean')
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise APIError(400, f'option "{key}" must be of type {kind}')
    if not math.isfinite(value):
        raise APIError(400, f'option "{key}" must be a finite number')
    if kind == "integer":
        if abs(value) > 2**63 - 1:
            raise APIError(400, f'option "{key}" is out of range')
        return int(value)
    return float(value)


def _check_ranges(o: Options) -> None:
    if not 0 <= o.num_ctx <= MAX_NUM_CTX:
        raise APIError(400, f"num_ctx must be between 0 and {MAX_NUM_CTX}")
    if not 1 <= o.num_batch <= MAX_NUM_BATCH:
        raise APIError(400, f"num_batch must be between 1 and {MAX_NUM_BATCH}")
    if not 0 <= o.num_thread <= MAX_NUM_THREAD:
        raise APIError(400, f"num_thread must be between 0 and {MAX_NUM_THREAD}")
    if o.repeat_penalty <= 0:
        raise APIError(400, "repeat_penalty must be greater than 0")
    if o.num_keep < -1:
        raise APIError(400, "num_keep must be -1 or greater")


DEFAULT_OPTIONS = Options()
