"""Go's formatting of values: fmt's %v / Sprint / Sprintf, strconv.Quote, encoding/json.

Only what templates can reach is implemented, but that part follows Go closely: float
formatting (shortest digits, %v switching to exponent form at 1e+06 / 1e-05), bad-verb and
missing-argument markers (`%!d(string=x)`, `%!s(MISSING)`), and json's sorted map keys and
HTML-safe string escaping.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from ._govalues import GoMap, GoSlice, GoStruct, go_type_name, methods_of, sorted_keys

# Width/precision beyond this would only build huge strings; the interpreter refuses it.
MAX_WIDTH = 1 << 20


class UnsupportedValue(Exception):
    """encoding/json cannot marshal this value (NaN or infinity)."""


# -- strconv -----------------------------------------------------------------------------------
_SHORT_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(s: str, ascii_only: bool = False) -> str:
    """strconv.Quote (or QuoteToASCII)."""
    out = ['"']
    for ch in s:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch.isprintable() and not (ascii_only and ch > "\x7f"):
            out.append(ch)
        elif ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        else:
            o = ord(ch)
            if o < 0x20 or o == 0x7F:
                out.append(f"\\x{o:02x}")
            elif o < 0x10000:
                out.append(f"\\u{o:04x}")
            else:
                out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


def _shortest_digits(x: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of abs(x) > 0 and the decimal point position."""
    _, digits, exp = Decimal(repr(abs(x))).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0")
    trailing = len(digits) - len(ds)
    ds = ds.lstrip("0")
    assert isinstance(exp, int)
    dp = len(ds) + exp + trailing
    return ds, dp


def _fmt_e(neg: bool, ds: str, dp: int) -> str:
    mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
    e = dp - 1
    return f"{'-' if neg else ''}{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"


def _fmt_f(neg: bool, ds: str, dp: int) -> str:
    if dp <= 0:
        s = "0." + "0" * (-dp) + ds
    elif dp >= len(ds):
        s = ds + "0" * (dp - len(ds))
    else:
        s = ds[:dp] + "." + ds[dp:]
    return ("-" if neg else "") + s


def _special_float(x: float) -> str | None:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if x == 0:
        return "-0" if math.copysign(1, x) < 0 else "0"
    return None


def format_float_v(x: float) -> str:
    """strconv.FormatFloat(x, 'g', -1, 64), which is what %v prints."""
    sp = _special_float(x)
    if sp is not None:
        return sp
    ds, dp = _shortest_digits(x)
    exp = dp - 1
    if exp < -4 or exp >= 6:  # Go uses precision 6 for the %e decision when shortest
        return _fmt_e(x < 0, ds, dp)
    return _fmt_f(x < 0, ds, dp)


def format_float_json(x: float) -> str:
    if math.isnan(x) or math.isinf(x):
        raise UnsupportedValue(str(x))
    if x == 0:
        return "-0" if math.copysign(1, x) < 0 else "0"
    ds, dp = _shortest_digits(x)
    a = abs(x)
    if a < 1e-6 or a >= 1e21:
        s = _fmt_e(x < 0, ds, dp)
        if len(s) >= 4 and s[-4] == "e" and s[-3] == "-" and s[-2] == "0":
            s = s[:-2] + s[-1]  # e-07 -> e-7
        return s
    return _fmt_f(x < 0, ds, dp)


# -- fmt %v ------------------------------------------------------------------------------------
def _stringer(v: Any) -> str | None:
    m = methods_of(v).get("String")
    return None if m is None else m.impl(v)


def fmt_v(v: Any) -> str:
    """fmt.Sprint of one value (%v)."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return format_float_v(v)
    if isinstance(v, str):
        return v
    s = _stringer(v)
    if s is not None:
        return s
    if isinstance(v, GoStruct):
        return "{" + " ".join(fmt_v(v.get(f)) for f in v.fields) + "}"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{fmt_v(k)}:{fmt_v(v[k])}" for k in sorted_keys(v)) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(fmt_v(x) for x in v) + "]"
    return "?"


def sprint(args: list[Any]) -> str:
    """fmt.Sprint: spaces between operands when neither side is a string."""
    out: list[str] = []
    prev_str = True
    for i, a in enumerate(args):
        is_str = isinstance(a, str)
        if i > 0 and not is_str and not prev_str:
            out.append(" ")
        out.append(fmt_v(a))
        prev_str = is_str
    return "".join(out)


def sprintln(args: list[Any]) -> str:
    return " ".join(fmt_v(a) for a in args) + "\n"


# -- fmt Sprintf -------------------------------------------------------------------------------
def _pad(s: str, width: int | None, flags: str, zero_ok: bool = True) -> str:
    if width is None or len(s) >= width:
        return s
    if "-" in flags:
        return s + " " * (width - len(s))
    if "0" in flags and zero_ok:
        sign = s[0] if s[:1] in ("-", "+", " ") else ""
        return sign + "0" * (width - len(s)) + s[len(sign) :]
    return " " * (width - len(s)) + s


def _bad_verb(verb: str, v: Any) -> str:
    if v is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type_name(v)}={fmt_v(v)})"


def _fmt_int(v: int, verb: str, flags: str, width: int | None, prec: int | None) -> str:
    neg = v < 0
    a = -v if neg else v
    if verb in "dv":
        digits = str(a)
    elif verb == "b":
        digits = format(a, "b")
    elif verb in "oO":
        digits = format(a, "o")
    elif verb == "x":
        digits = format(a, "x")
    elif verb == "X":
        digits = format(a, "X")
    elif verb == "c":
        return _pad(chr(v) if 0 <= v <= 0x10FFFF else "\ufffd", width, flags)
    elif verb == "q":
        return _pad("'" + go_quote(chr(v) if 0 <= v <= 0x10FFFF else "\ufffd")[1:-1] + "'", width, flags)
    elif verb == "U":
        return _pad(f"U+{v:04X}", width, flags)
    else:
        return _bad_verb(verb, v)
    if prec is not None:
        digits = digits.rjust(prec, "0")
    if "#" in flags:
        digits = {"x": "0x", "X": "0X", "o": "0", "b": "0b"}.get(verb, "") + digits
    if verb == "O":
        digits = "0o" + digits
    sign = "-" if neg else ("+" if "+" in flags else (" " if " " in flags else ""))
    return _pad(sign + digits, width, flags, zero_ok=prec is None)


def _fmt_float(v: float, verb: str, flags: str, width: int | None, prec: int | None) -> str:
    sp = _special_float(v) if (math.isnan(v) or math.isinf(v)) else None
    if sp is not None:
        s = sp if sp != "+Inf" or "+" in flags else "Inf"
        return _pad(s, width, flags, zero_ok=False)
    if verb in "vgG" and prec is None:
        s = format_float_v(v)
        if verb == "G":
            s = s.upper()
    elif verb in "eEfFgG":
        p = 6 if prec is None else prec
        s = f"{v:.{p}{verb}}" if verb != "F" else f"{v:.{p}f}"
    else:
        return _bad_verb(verb, v)
    if not s.startswith("-"):
        s = ("+" if "+" in flags else (" " if " " in flags else "")) + s
    return _pad(s, width, flags)


def _fmt_str(s: str, verb: str, flags: str, width: int | None, prec: int | None, orig: Any) -> str:
    if verb in "sv":
        out = s if prec is None else s[:prec]
    elif verb == "q":
        t = s if prec is None else s[:prec]
        out = (
            ("`" + t + "`")
            if ("#" in flags and "`" not in t and t.isprintable())
            else go_quote(t, "+" in flags)
        )
    elif verb in "xX":
        b = s.encode()
        if prec is not None:
            b = b[:prec]
        sep = " " if " " in flags else ""
        out = sep.join(format(c, "02" + ("x" if verb == "x" else "X")) for c in b)
    else:
        return _bad_verb(verb, orig)
    return _pad(out, width, flags)


def fmt_arg(v: Any, verb: str, flags: str, width: int | None, prec: int | None) -> str:
    if verb == "T":
        return _pad(go_type_name(v) if v is not None else "<nil>", width, flags)
    if v is None:
        return _pad("<nil>", width, flags) if verb == "v" else _bad_verb(verb, v)
    if verb == "v" and "#" in flags:
        if isinstance(v, str):
            return _pad(go_quote(v), width, flags)
        return _pad(fmt_v(v), width, flags)
    if isinstance(v, bool):
        return _pad("true" if v else "false", width, flags) if verb in "tv" else _bad_verb(verb, v)
    if isinstance(v, int):
        return _fmt_int(v, verb, flags, width, prec)
    if isinstance(v, float):
        return _fmt_float(v, verb, flags, width, prec)
    if isinstance(v, str):
        return _fmt_str(v, verb, flags, width, prec, v)
    s = _stringer(v)
    if s is not None and verb in "vsqxX":
        return _fmt_str(s, verb, flags, width, prec, v)
    if isinstance(v, GoStruct):
        return "{" + " ".join(fmt_arg(v.get(f), verb, flags, width, prec) for f in v.fields) + "}"
    if isinstance(v, dict):
        parts = [
            f"{fmt_arg(k, verb, flags, width, prec)}:{fmt_arg(v[k], verb, flags, width, prec)}"
            for k in sorted_keys(v)
        ]
        return "map[" + " ".join(parts) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(fmt_arg(x, verb, flags, width, prec) for x in v) + "]"
    return _bad_verb(verb, v)


def sprintf(fmt: str, args: list[Any]) -> str:
    """fmt.Sprintf for the verbs templates use (%s %d %v %q %f %.2f %t %x %c %e %g %T %%)."""
    out: list[str] = []
    argi = 0
    i = 0
    n = len(fmt)
    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        i = j + 1
        flags = ""
        while i < n and fmt[i] in "+-# 0":
            flags += fmt[i]
            i += 1
        width: int | None = None
        if i < n and fmt[i] == "*":
            i += 1
            if argi < len(args) and isinstance(args[argi], int) and not isinstance(args[argi], bool):
                width = args[argi]
                if width < 0:
                    flags += "-"
                    width = -width
            else:
                out.append("%!(BADWIDTH)")
            argi += 1
        else:
            k = i
            while i < n and fmt[i].isdigit():
                i += 1
            if i > k:
                width = int(fmt[k:i])
        prec: int | None = None
        if i < n and fmt[i] == ".":
            i += 1
            if i < n and fmt[i] == "*":
                i += 1
                if argi < len(args) and isinstance(args[argi], int) and not isinstance(args[argi], bool):
                    prec = max(args[argi], 0)
                else:
                    out.append("%!(BADPREC)")
                argi += 1
            else:
                k = i
                while i < n and fmt[i].isdigit():
                    i += 1
                prec = int(fmt[k:i]) if i > k else 0
        if (width or 0) > MAX_WIDTH or (prec or 0) > MAX_WIDTH:
            raise ValueError("printf width or precision too large")
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
            continue
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(fmt_arg(args[argi], verb, flags, width, prec))
        argi += 1
    if argi < len(args):
        extra = ", ".join("<nil>" if a is None else f"{go_type_name(a)}={fmt_v(a)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


# -- encoding/json -----------------------------------------------------------------------------
_JSON_ESC = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def json_string(s: str) -> str:
    out = ['"']
    for ch in s:
        e = _JSON_ESC.get(ch)
        if e is not None:
            out.append(e)
        elif ch < " ":
            out.append(f"\\u{ord(ch):04x}")
        elif "\ud800" <= ch <= "\udfff":
            out.append("\\ufffd")  # lone surrogate: Go writes the replacement character
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_json(v: Any) -> str:
    """json.Marshal as Go does it for the value shapes templates see."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return format_float_json(v)
    if isinstance(v, str):
        return json_string(v)
    if isinstance(v, GoStruct):
        return "{" + ",".join(f"{json_string(k)}:{go_json(x)}" for k, x in v.json_pairs()) + "}"
    if isinstance(v, dict):
        return "{" + ",".join(f"{json_string(str(k))}:{go_json(v[k])}" for k in sorted_keys(v)) + "}"
    if isinstance(v, (list, tuple)):
        if isinstance(v, GoSlice):
            if v.is_nil:
                return "null"
            override = v.json_override()
            if override is not NotImplemented:
                return go_json(override)
        return "[" + ",".join(go_json(x) for x in v) + "]"
    raise UnsupportedValue(type(v).__name__)


__all__ = [
    "GoMap",
    "GoSlice",
    "UnsupportedValue",
    "fmt_v",
    "format_float_json",
    "format_float_v",
    "go_json",
    "go_quote",
    "json_string",
    "sprint",
    "sprintf",
    "sprintln",
]
