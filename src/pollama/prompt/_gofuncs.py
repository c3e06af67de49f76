"""Go text/template's predefined functions (funcs.go), with Go's semantics and error texts.

`and`/`or` short-circuit in the interpreter (they are marked lazy here); everything else
receives already evaluated arguments. Strings are measured and indexed in UTF-8 bytes, as
Go does.
"""

from __future__ import annotations

import html as _html
import urllib.parse
from typing import Any

from ._gofmt import fmt_v, sprint, sprintf, sprintln
from ._govalues import FuncError, GoFunc, GoMap, GoSlice, GoStruct, go_type_name, truth


def _not(v: Any) -> bool:
    return not truth(v)


def _len(v: Any) -> int:
    if v is None:
        raise FuncError("len of nil pointer")
    if isinstance(v, str):
        return len(v.encode())
    if isinstance(v, (list, tuple, dict)):
        return len(v)
    raise FuncError(f"len of type {go_type_name(v)}")


def _index_arg(ix: Any, cap: int) -> int:
    if ix is None:
        raise FuncError("cannot index slice/array with nil")
    if isinstance(ix, bool) or not isinstance(ix, int):
        raise FuncError(f"cannot index slice/array with type {go_type_name(ix)}")
    if ix < 0 or ix > cap:
        raise FuncError(f"index out of range: {ix}")
    return ix


def _index(item: Any, *indexes: Any) -> Any:
    if item is None:
        raise FuncError("index of untyped nil")
    for ix in indexes:
        if item is None:
            raise FuncError("index of nil pointer")
        if isinstance(item, (str, list, tuple)):
            seq: Any = item.encode() if isinstance(item, str) else item
            x = _index_arg(ix, len(seq))
            if x >= len(seq):
                raise FuncError(f"index out of range: {x}")
            item = seq[x]
        elif isinstance(item, dict):
            if not isinstance(ix, str):
                raise FuncError(f"value has type {go_type_name(ix)}; should be string")
            item = item[ix] if ix in item else (type(item).zero if isinstance(item, GoMap) else None)
        else:
            raise FuncError(f"can't index item of type {go_type_name(item)}")
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    if item is None:
        raise FuncError("slice of untyped nil")
    if len(indexes) > 3:
        raise FuncError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise FuncError("cannot 3-index slice a string")
        seq: Any = item.encode()
    elif isinstance(item, (list, tuple)):
        seq = item
    else:
        raise FuncError(f"can't slice item of type {go_type_name(item)}")
    idx = [0, len(seq), len(seq)]
    for i, ix in enumerate(indexes):
        idx[i] = _index_arg(ix, len(seq))
    if idx[0] > idx[1]:
        raise FuncError(f"invalid slice index: {idx[0]} > {idx[1]}")
    if len(indexes) == 3 and idx[1] > idx[2]:
        raise FuncError(f"invalid slice index: {idx[1]} > {idx[2]}")
    part = seq[idx[0] : idx[1]]
    if isinstance(item, str):
        return part.decode("utf-8", "replace")
    if isinstance(item, GoSlice):
        return type(item)(part)
    return list(part)


def _kind(v: Any) -> str:
    if v is None:
        return "invalid"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    return "other"


def _eq(arg1: Any, *args: Any) -> bool:
    if not args:
        raise FuncError("missing argument for comparison")
    k1 = _kind(arg1)
    for a in args:
        k2 = _kind(a)
        if k1 != k2:
            if arg1 is not None and a is not None:
                raise FuncError("incompatible types for comparison")
            ok = False
        elif k1 == "invalid":
            ok = True
        elif k1 != "other":
            ok = arg1 == a
        elif isinstance(arg1, (GoStruct,)) or isinstance(a, GoStruct):
            ok = arg1 is a  # pointers compare by identity
        else:
            raise FuncError(f"non-comparable type {fmt_v(a)}: {go_type_name(a)}")
        if ok:
            return True
    return False


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


def _lt(a: Any, b: Any) -> bool:
    k1, k2 = _kind(a), _kind(b)
    if k1 in ("invalid", "other") or k2 in ("invalid", "other"):
        raise FuncError("invalid type for comparison")
    if k1 != k2:
        raise FuncError("incompatible types for comparison")
    if k1 == "bool":
        raise FuncError("invalid type for comparison")
    return a < b


def _le(a: Any, b: Any) -> bool:
    return _lt(a, b) or _eq(a, b)


def _gt(a: Any, b: Any) -> bool:
    return not _le(a, b)


def _ge(a: Any, b: Any) -> bool:
    return not _lt(a, b)


def _eval_args(args: tuple[Any, ...]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(list(args))


def _html_escape(*args: Any) -> str:
    s = _eval_args(args)
    return _html.escape(s, quote=False).replace('"', "&#34;").replace("'", "&#39;").replace("\x00", "\ufffd")


_JS_ESC = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "<": "\\u003C",
    ">": "\\u003E",
    "&": "\\u0026",
    "=": "\\u003D",
    "\n": "\\u000A",
    "\r": "\\u000D",
    "\t": "\\u0009",
}


def _js_escape(*args: Any) -> str:
    out = []
    for ch in _eval_args(args):
        if ch in _JS_ESC:
            out.append(_JS_ESC[ch])
        elif ch < " " or not ch.isprintable():
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def _urlquery(*args: Any) -> str:
    return urllib.parse.quote_plus(_eval_args(args), safe="")


def _call(fn: Any, *args: Any) -> Any:
    if fn is None:
        raise FuncError("call of nil")
    raise FuncError(f"non-function {fmt_v(fn)} of type {go_type_name(fn)}")


def _print(*args: Any) -> str:
    return sprint(list(args))


def _println(*args: Any) -> str:
    return sprintln(list(args))


def _printf(fmt: str, *args: Any) -> str:
    try:
        return sprintf(fmt, list(args))
    except ValueError as e:
        raise FuncError(str(e)) from None


BUILTINS: dict[str, GoFunc] = {
    "and": GoFunc(lambda *a: None, 1, variadic=True, lazy=True),
    "or": GoFunc(lambda *a: None, 1, variadic=True, lazy=True),
    "not": GoFunc(_not, 1),
    "len": GoFunc(_len, 1),
    "index": GoFunc(_index, 1, variadic=True),
    "slice": GoFunc(_slice, 1, variadic=True),
    "eq": GoFunc(_eq, 1, variadic=True),
    "ne": GoFunc(_ne, 2),
    "lt": GoFunc(_lt, 2),
    "le": GoFunc(_le, 2),
    "gt": GoFunc(_gt, 2),
    "ge": GoFunc(_ge, 2),
    "print": GoFunc(_print, 0, variadic=True, value_args=False),
    "printf": GoFunc(_printf, 1, variadic=True, value_args=False, string_args="first"),
    "println": GoFunc(_println, 0, variadic=True, value_args=False),
    "html": GoFunc(_html_escape, 0, variadic=True, value_args=False),
    "js": GoFunc(_js_escape, 0, variadic=True, value_args=False),
    "urlquery": GoFunc(_urlquery, 0, variadic=True, value_args=False),
    "call": GoFunc(_call, 1, variadic=True),
}
