"""Streaming extraction of tool calls from generated text (Ollama's tools/tools.go, §6.6).

    p = ToolCallParser(request_tools, tag="<tool_call>")  # tag from capabilities.tool_call_tag
    for piece in stream:
        calls, content = p.add(piece)
    content = p.flush()

- Until the tag appears, text is content; text that could be the start of the tag is held
  back. With the bare-JSON tags `{` / `[`, any non-blank text before the tag means "no
  tool call" and the parser passes everything through from then on.
- After the tag: a call needs a tool name (the earliest occurrence of any of the request's
  tool names, the longest one at that position; never decided while the text ends with a
  prefix of a name) and the first balanced `{...}` that is valid JSON (string- and
  escape-aware). Arguments are `obj.arguments` / `obj.parameters` (object or JSON string)
  when `obj.name` exists, else `obj[<tool name>]`, else the first nested object that
  qualifies, else the object itself. Calls get increasing `index`.
- With a `{` / `[` tag, a balanced bracket group that yields no call ends tool parsing and
  is returned as content.
- `flush()` returns leftover text when no call was made.

Each chunk costs time proportional to its length (scanner state is kept between chunks),
so the parser can run on every token. Differences from Ollama: `{"name": x}` with no
arguments yields a call with `{}` (Ollama yields nothing and stalls), and on flush a
never-completed tag (e.g. a lone "<tool_") is returned as content instead of dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

_LOOKING = 0
_CALLING = 1
_DONE = 2

_SPECIAL = re.compile(r'[\\"{}]')


def _loads_object(text: str) -> dict | None:
    def bad_constant(name: str) -> Any:
        raise ValueError(name)  # Go's decoder has no NaN/Infinity

    try:
        v = json.loads(text, parse_constant=bad_constant)
    except (ValueError, RecursionError):
        return None
    return v if isinstance(v, dict) else None


def _as_object(v: Any) -> dict | None:
    if isinstance(v, dict):
        return v
    if isinstance(v, str):
        return _loads_object(v)
    return None


def extract_arguments(obj: dict, tool_name: str) -> dict:
    """The arguments inside a parsed JSON object, for a call of `tool_name`."""

    def find(o: dict) -> tuple[dict | None, bool]:
        if "name" in o:
            for key in ("arguments", "parameters"):
                a = _as_object(o.get(key))
                if a is not None:
                    return a, True
            return None, True
        a = _as_object(o.get(tool_name))
        if a is not None:
            return a, True
        for v in o.values():
            if isinstance(v, dict):
                r, ok = find(v)
                if ok:
                    return r, ok
            elif isinstance(v, list):
                for item in v:
                    if isinstance(item, dict):
                        r, ok = find(item)
                        if ok:
                            return r, ok
        return None, False

    try:
        args, found = find(obj)
    except RecursionError:
        return obj
    if found:
        return args if args is not None else {}
    return obj


def tool_names(tools: Sequence[Any] | None) -> list[str]:
    names = []
    for t in tools or []:
        fn = t.get("function") if isinstance(t, dict) else None
        name = fn.get("name") if isinstance(fn, dict) else None
        if isinstance(name, str) and name:
            names.append(name)
    return names


class ToolCallParser:
    def __init__(self, tools: Sequence[Any] | None, tag: str = "{"):
        self.tag = tag or "{"
        self.names = tool_names(tools)
        self._longest = max((len(n) for n in self.names), default=0)
        self._prefixes = {n[:k] for n in self.names for k in range(1, len(n))}
        self._state = _LOOKING
        self._buf = ""
        self._n = 0
        self._bracket = {"{": ("{", "}"), "[": ("[", "]")}.get(self.tag)
        self._reset_scan()

    @property
    def calls_made(self) -> int:
        return self._n

    def _reset_scan(self) -> None:
        # object scanner
        self._pos = 0
        self._depth = 0
        self._in_str = False
        self._esc = False
        self._start = -1
        self._obj: tuple[dict, int] | None = None
        # name search
        self._name: tuple[int, str] | None = None
        self._name_scanned = 0
        # bracket balance for `{` / `[` tags
        self._bpos = 0
        self._bcount = 0
        self._bdone = False

    # -- public ------------------------------------------------------------------------------
    def add(self, text: str) -> tuple[list[dict[str, Any]], str]:
        """Feed a chunk; return the tool calls it completes and the content it releases."""
        if not text:
            return [], ""
        if self._state == _DONE:
            return [], text
        buf = self._buf
        self._buf = ""
        buf += text  # `buf` holds the only reference, so CPython appends in place
        content = ""
        if self._state == _LOOKING:
            i, found = self._find_tag(buf)
            if i < 0:
                content, buf = buf, ""
            else:
                content, buf = buf[:i], buf[i:]
            if self._bracket is not None and content.strip():
                self._state = _DONE
                return [], content + buf
            if not found:
                self._buf = buf
                return [], content
            self._state = _CALLING
            self._reset_scan()
        self._buf = buf
        calls = []
        while (call := self._parse_one()) is not None:
            calls.append(call)
        if self._bracket is not None and self._balanced():
            self._state = _DONE
            content += self._buf
            self._buf = ""
        return calls, content

    def flush(self) -> str:
        """End of generation: leftover text, unless a tool call was made."""
        out = "" if self._n else self._buf
        self._buf = ""
        return out

    # -- internals ---------------------------------------------------------------------------
    def _find_tag(self, buf: str) -> tuple[int, bool]:
        i = buf.find(self.tag)
        if i >= 0:
            return i, True
        for k in range(min(len(self.tag) - 1, len(buf)), 0, -1):
            if buf.endswith(self.tag[:k]):
                return len(buf) - k, False
        return -1, False

    def _scan_object(self, buf: str) -> None:
        """Advance to the first balanced `{...}` that parses as a JSON object."""
        if self._obj is not None:
            return
        pos = self._pos
        n = len(buf)
        if self._esc and pos < n:
            self._esc = False
            pos += 1
        while True:
            m = _SPECIAL.search(buf, pos)
            if m is None:
                pos = n
                break
            j = m.start()
            c = buf[j]
            if c == "\\":
                if j + 1 < n:
                    pos = j + 2
                    continue
                self._esc = True
                pos = n
                break
            pos = j + 1
            if c == '"':
                self._in_str = not self._in_str
            elif self._in_str:
                continue
            elif c == "{":
                if self._depth == 0:
                    self._start = j
                self._depth += 1
            else:
                self._depth -= 1
                if self._depth == 0 and self._start != -1:
                    obj = _loads_object(buf[self._start : j + 1])
                    if obj is not None:
                        self._obj = (obj, j + 1)
                        break
                    self._start = -1
                if self._depth < 0:
                    self._depth = 0
        self._pos = pos

    def _find_name(self, buf: str) -> tuple[int, str] | None:
        if not self.names:
            return None
        # Earliest occurrence, longest at the same position. Occurrences inside the part
        # already searched are known; new ones can only end in the new text.
        best = self._name
        base = self._name_scanned
        for name in self.names:
            p = buf.find(name, max(0, base - len(name) + 1))
            if p >= 0 and (best is None or p < best[0] or (p == best[0] and len(name) > len(best[1]))):
                best = (p, name)
        self._name = best
        self._name_scanned = len(buf)
        # Never decide while the text ends with the beginning of a tool name.
        for k in range(1, min(len(buf), self._longest) + 1):
            if buf[-k:] in self._prefixes:
                return None
        return best

    def _parse_one(self) -> dict[str, Any] | None:
        buf = self._buf
        if not buf:
            return None
        self._scan_object(buf)
        found = self._find_name(buf)
        if found is None or self._obj is None:
            return None
        pos, name = found
        obj, obj_end = self._obj
        end = max(pos + len(name), obj_end)
        self._buf = buf[end:]
        self._reset_scan()
        index = self._n
        self._n += 1
        return {"function": {"index": index, "name": name, "arguments": extract_arguments(obj, name)}}

    def _balanced(self) -> bool:
        """For `{` / `[` tags: does the buffer close a bracket group it opened?"""
        assert self._bracket is not None
        if self._bdone:
            return True
        open_, close = self._bracket
        buf = self._buf
        count = self._bcount
        for i in range(self._bpos, len(buf)):
            c = buf[i]
            if c == open_:
                count += 1
            elif c == close:
                count -= 1
                if count == 0:
                    self._bdone = True
                    break
        self._bcount = count
        self._bpos = len(buf)
        return self._bdone
