"""Model parameters: their types, the text form a Modelfile gives them, and the params layer.

The names and types are those of the request `options` (api/options.py), as in Ollama's
`api.FormatParams`. A Modelfile value is text and is parsed per type (floats stored as
float32, ints as int64, `stop` accumulating); a create request's `parameters` are JSON and
are checked per type. The layer is JSON exactly as Go's encoder writes the map: sorted
keys, HTML-safe escapes, Go's float formatting and a trailing newline — so the same
parameters give the same blob digest as Ollama.
"""

from __future__ import annotations

import logging
import math
from dataclasses import fields
from typing import Any

from pollama.api.options import DEPRECATED, Options
from pollama.modelfile.gofmt import go_json_float, shortest_float32
from pollama.store import gojson

log = logging.getLogger("pollama.modelfile")

_KINDS = {"int": "int", "float": "float", "bool | None": "bool", "tuple[str, ...]": "list"}
TYPES: dict[str, str] = {f.name: _KINDS[str(f.type)] for f in fields(Options)}


class ParameterError(ValueError):
    """A parameter with an unknown name or a value of the wrong type."""


_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def parse_text(name: str, text: str) -> Any:
    """One `PARAMETER name value` line's value, typed (Ollama's FormatParams)."""
    kind = TYPES.get(name)
    if kind is None:
        raise ParameterError(f"unknown parameter '{name}'")
    if kind == "list":
        return [text]
    if kind == "bool":
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ParameterError(f"invalid bool value [{text}] for parameter '{name}'")
    if kind == "int":
        try:
            value = int(text.replace("_", "x"), 10)  # Go's ParseInt takes no underscores
        except ValueError:
            raise ParameterError(f"invalid int value [{text}] for parameter '{name}'") from None
        if not -(2**63) <= value < 2**63:
            raise ParameterError(f"invalid int value [{text}] for parameter '{name}'")
        return value
    try:
        value = float(text.replace("_", "x"))
    except ValueError:
        raise ParameterError(f"invalid float value [{text}] for parameter '{name}'") from None
    if not math.isfinite(value) or (abs(value) > 3.4028234663852886e38):
        raise ParameterError(f"invalid float value [{text}] for parameter '{name}'")
    return _whole(shortest_float32(value))


def _whole(value: float) -> float | int:
    """Whole floats are stored as integers: Go's JSON writes float32(1) as `1`, and so do we."""
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def add(params: dict[str, Any], name: str, value: Any) -> None:
    """Merge one parsed value in: list parameters (stop) accumulate, the others replace."""
    if TYPES.get(name) == "list":
        params.setdefault(name, []).extend(value)
    else:
        params[name] = value


def check(params: Any) -> dict[str, Any]:
    """A create request's `parameters` map, checked against the option types. Deprecated
    names are dropped (with a warning in the log), as Ollama drops them."""
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise ParameterError("parameters must be a JSON object")
    out: dict[str, Any] = {}
    for name, value in params.items():
        if name in DEPRECATED:
            log.warning("parameter %s is deprecated", name)
            continue
        kind = TYPES.get(name)
        if kind is None:
            raise ParameterError(f"unknown parameter '{name}'")
        if value is None:
            continue
        out[name] = _check_one(name, kind, value)
    return out


def _check_one(name: str, kind: str, value: Any) -> Any:
    if kind == "list":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ParameterError(f'parameter "{name}" must be an array of strings')
        return list(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ParameterError(f'parameter "{name}" must be of type boolean')
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ParameterError(f'parameter "{name}" must be of type {"integer" if kind == "int" else "float"}')
    if kind == "int":
        if float(value) != int(value) or not -(2**63) <= int(value) < 2**63:
            raise ParameterError(f'parameter "{name}" must be of type integer')
        return int(value)
    return _whole(float(value))


def layer_bytes(params: dict[str, Any]) -> bytes:
    """The params layer as Go's json.Encoder writes a map: sorted keys, trailing newline."""
    parts = []
    for key in sorted(params):
        value = params[key]
        text = go_json_float(value) if isinstance(value, float) else gojson.dumps(value).decode()
        parts.append(gojson.dumps(key).decode() + ":" + text)
    return ("{" + ",".join(parts) + "}\n").encode()
