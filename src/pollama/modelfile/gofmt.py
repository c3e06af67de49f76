"""Values printed the way Go prints them, where Ollama's output shows Go's formatting.

`/api/show` builds `parameters` with `fmt.Sprintf("%-30s %#v")`, the Modelfile with `%v`,
and parameter layers with `encoding/json`; copying those byte for byte keeps pollama's
output and digests identical to Ollama's for the same model.
"""

from __future__ import annotations

import unicodedata
from decimal import Decimal
from typing import Any

import numpy as np


def go_g(value: float) -> str:
    """Go's `%v`/`%g` of a float64 at the shortest precision: `1`, `0.7`, `262144`, `1e+06`, `1e-05`."""
    if value == 0:
        return "-0" if str(value).startswith("-") else "0"
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    sign, digits, exp = Decimal(repr(float(value))).normalize().as_tuple()
    text = "".join(map(str, digits))
    point = len(text) + int(exp) - 1  # decimal exponent of the first digit
    minus = "-" if sign else ""
    if point < -4 or point >= 6:  # Go switches to %e there when the precision is "shortest"
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{minus}{mantissa}e{'+' if point >= 0 else '-'}{abs(point):02d}"
    return f"{minus}{Decimal(repr(abs(float(value)))).normalize():f}"


def go_json_float(value: float, bits: int = 64) -> str:
    """A float as Go's encoding/json writes it (float32 when `bits` is 32): `1`, `0.7`, `1e-7`."""
    x: Any = np.float32(value) if bits == 32 else np.float64(value)
    a = abs(float(x))
    if a != 0 and (a < 1e-6 or a >= 1e21):
        text = np.format_float_scientific(x, unique=True, trim="-")
        mantissa, _, exp = text.partition("e")
        sign = "-" if exp.startswith("-") else "+"
        digits = exp.lstrip("+-").lstrip("0") or "0"  # Go cleans e-07 up to e-7
        return f"{mantissa}e{sign}{digits}"
    return np.format_float_positional(x, unique=True, trim="-")


def shortest_float32(value: float) -> float:
    """The double nearest the shortest decimal that reads back as the same float32."""
    return float(np.format_float_positional(np.float32(value), unique=True, trim="-"))


_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def is_print(ch: str) -> bool:
    """Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space."""
    return ch == " " or unicodedata.category(ch)[0] in "LMNPS"


def go_quote(text: str) -> str:
    """Go's strconv.Quote (and `%q`, `%#v` of a string)."""
    out = ['"']
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif is_print(ch):
            out.append(ch)
        else:
            code = ord(ch)
            if code < 0x80:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def go_value(value: Any, *, sharp: bool = False) -> str:
    """Go's `%v` (or `%#v` with `sharp`) of a JSON-decoded value. Integers stay integers: Go
    would print a whole float64 >= 1e6 as `1e+06`, which does not parse back as an int."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_g(value)
    if isinstance(value, str):
        return go_quote(value) if sharp else value
    if isinstance(value, list | tuple):
        inner = ", " if sharp else " "
        body = inner.join(go_value(v, sharp=sharp) for v in value)
        return ("[]interface {}{" + body + "}") if sharp else f"[{body}]"
    if value is None:
        return "<nil>"
    return str(value)
