"""The Go-shaped values Ollama hands its templates, built from wire-shaped Python data.

Mirrors `template/template.go` (templateMessage, templateTool, templateArgs, ...) and the
api.Tool* types: field names (`.Role`, `.ToolCalls`, `.Function.Arguments`), JSON output
(`{{ .Tools }}`, `{{ json .Tools }}`, `{{ .Function.Arguments }}` print JSON with Go's
sorted map keys and omitempty rules) and Ollama's extra template functions.

Deliberate difference: Ollama (at the reference snapshot) prints `{{ .Function }}` and
`{{ .Function.Parameters }}` of a tool in Go struct syntax (a known bug, ollama#14601);
here they print JSON, which is what the templates that use them (qwen2.5/qwen3) expect.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable
from typing import Any, ClassVar

from ._gofmt import UnsupportedValue, go_json
from ._govalues import GoFunc, GoMap, GoSlice, GoStruct


def _json_or_empty(v: Any) -> str:
    try:
        return go_json(v)
    except UnsupportedValue:
        return ""  # Ollama's json func ignores the marshal error and returns ""


_STRING_IS_JSON = {"String": GoFunc(lambda self: _json_or_empty(self), 0)}


class PropertyType(GoSlice):
    """api.PropertyType: a JSON Schema type, a string or a list of strings."""

    go_type = "api.PropertyType"

    def go_string(self) -> str:
        if not self:
            return ""
        if len(self) == 1:
            return str(self[0])
        return "[" + " ".join(str(x) for x in self) + "]"

    def json_override(self) -> Any:
        return self[0] if len(self) == 1 else NotImplemented


PropertyType.methods = {"String": GoFunc(lambda self: self.go_string(), 0)}

_TS_TYPES = {
    "string": "string",
    "number": "number",
    "integer": "number",
    "boolean": "boolean",
    "array": "any[]",
    "object": "Record<string, any>",
    "null": "null",
}


class ToolProperty(GoStruct):
    go_type = "api.ToolProperty"
    fields = ("AnyOf", "Type", "Items", "Description", "Enum", "Properties", "Required")
    _keys: ClassVar[dict[str, str]] = {
        "AnyOf": "anyOf",
        "Type": "type",
        "Items": "items",
        "Description": "description",
        "Enum": "enum",
        "Properties": "properties",
        "Required": "required",
    }

    def json_pairs(self) -> list[tuple[str, Any]]:
        out = []
        for f in self.fields:  # every field is omitempty
            v = self._v[f]
            if v is None or (isinstance(v, (str, list)) and not v and f != "Properties"):
                continue
            out.append((self._keys[f], v))
        return out

    def typescript_type(self) -> str:
        any_of = self._v["AnyOf"]
        if any_of:
            return " | ".join(p.typescript_type() for p in any_of)
        types = self._v["Type"]
        if not types:
            return "any"
        return " | ".join(_TS_TYPES.get(str(t), "any") for t in types)


ToolProperty.methods = {"ToTypeScriptType": GoFunc(lambda self: self.typescript_type(), 0)}

_ZERO_PROPERTY = ToolProperty(
    AnyOf=GoSlice(is_nil=True),
    Type=PropertyType(is_nil=True),
    Items=None,
    Description="",
    Enum=GoSlice(is_nil=True),
    Properties=None,
    Required=GoSlice(is_nil=True),
)


class OrderedProperties(GoMap):
    """api.ToolPropertiesMap: keeps the request's key order."""

    go_type = "*api.ToolPropertiesMap"
    sort_keys = False


class TemplateProperties(GoMap):
    """template.templateProperties: a plain Go map, so sorted, printing as JSON."""

    go_type = "template.templateProperties"
    zero = _ZERO_PROPERTY
    methods = _STRING_IS_JSON


class ToolFunctionParameters(GoStruct):
    go_type = "template.templateToolFunctionParameters"
    fields = ("Type", "Defs", "Items", "Required", "Properties")
    methods = _STRING_IS_JSON

    def json_pairs(self) -> list[tuple[str, Any]]:
        v = self._v
        out: list[tuple[str, Any]] = [("type", v["Type"])]
        if v["Defs"] is not None:
            out.append(("$defs", v["Defs"]))
        if v["Items"] is not None:
            out.append(("items", v["Items"]))
        if v["Required"]:
            out.append(("required", v["Required"]))
        out.append(("properties", v["Properties"]))
        return out


class ToolFunction(GoStruct):
    go_type = "template.templateToolFunction"
    fields = ("Name", "Description", "Parameters")
    methods = _STRING_IS_JSON

    def json_pairs(self) -> list[tuple[str, Any]]:
        v = self._v
        return [("name", v["Name"]), ("description", v["Description"]), ("parameters", v["Parameters"])]


class Tool(GoStruct):
    go_type = "template.templateTool"
    fields = ("Type", "Items", "Function")
    methods = _STRING_IS_JSON

    def json_pairs(self) -> list[tuple[str, Any]]:
        v = self._v
        out: list[tuple[str, Any]] = [("type", v["Type"])]
        if v["Items"] is not None:
            out.append(("items", v["Items"]))
        out.append(("function", v["Function"]))
        return out


class ToolList(GoSlice):
    go_type = "template.templateTools"
    methods = _STRING_IS_JSON


class Arguments(GoMap):
    """template.templateArgs: tool-call arguments; prints as JSON (sorted keys)."""

    go_type = "template.templateArgs"
    methods = _STRING_IS_JSON


class ToolCallFunction(GoStruct):
    go_type = "template.templateToolCallFunction"
    fields = ("Index", "Name", "Arguments")


class ToolCall(GoStruct):
    go_type = "template.templateToolCall"
    fields = ("ID", "Function")


class ToolCallList(GoSlice):
    go_type = "[]template.templateToolCall"


class ImageList(GoSlice):
    go_type = "[]api.ImageData"


class Message(GoStruct):
    go_type = "*template.templateMessage"
    fields = ("Role", "Content", "Thinking", "Images", "ToolCalls", "ToolName", "ToolCallID")


class MessageList(GoSlice):
    go_type = "[]*template.templateMessage"


# -- builders ------------------------------------------------------------------------------------
def _str(v: Any) -> str:
    return v if isinstance(v, str) else ("" if v is None else str(v))


def _strings(v: Any) -> GoSlice:
    if not isinstance(v, list) or not v:
        return GoSlice(is_nil=True)
    return GoSlice(_str(x) for x in v)


def _property(p: Any) -> ToolProperty:
    if not isinstance(p, dict):
        return _ZERO_PROPERTY
    t = p.get("type")
    types = PropertyType([t] if isinstance(t, str) else [_str(x) for x in t] if isinstance(t, list) else [])
    any_of = p.get("anyOf")
    props = p.get("properties")
    enum = p.get("enum")
    return ToolProperty(
        AnyOf=GoSlice(_property(x) for x in any_of) if isinstance(any_of, list) and any_of else GoSlice(),
        Type=types,
        Items=p.get("items"),
        Description=_str(p.get("description")),
        Enum=GoSlice(enum) if isinstance(enum, list) else GoSlice(),
        Properties=OrderedProperties((k, _property(v)) for k, v in props.items())
        if isinstance(props, dict)
        else None,
        Required=_strings(p.get("required")),
    )


def tool_view(tool: Any) -> Tool:
    tool = tool if isinstance(tool, dict) else {}
    fn = tool.get("function") if isinstance(tool.get("function"), dict) else {}
    params = fn.get("parameters") if isinstance(fn.get("parameters"), dict) else {}
    props = params.get("properties")
    return Tool(
        Type=_str(tool.get("type")),
        Items=tool.get("items"),
        Function=ToolFunction(
            Name=_str(fn.get("name")),
            Description=_str(fn.get("description")),
            Parameters=ToolFunctionParameters(
                Type=_str(params.get("type")),
                Defs=params.get("$defs"),
                Items=params.get("items"),
                Required=_strings(params.get("required")),
                Properties=TemplateProperties((k, _property(v)) for k, v in props.items())
                if isinstance(props, dict)
                else None,
            ),
        ),
    )


def tools_view(tools: Iterable[Any] | None) -> ToolList:
    if tools is None:
        return ToolList(is_nil=True)
    return ToolList(tool_view(t) for t in tools)


def parse_arguments(args: Any) -> dict:
    """Tool-call arguments as a dict; a JSON string (OpenAI style) is decoded."""
    if isinstance(args, dict):
        return args
    if isinstance(args, str) and args.strip():
        try:
            v = json.loads(args)
        except ValueError:
            return {}
        return v if isinstance(v, dict) else {}
    return {}


def tool_call_view(tc: Any) -> ToolCall:
    tc = tc if isinstance(tc, dict) else {}
    fn = tc.get("function") if isinstance(tc.get("function"), dict) else {}
    index = fn.get("index", 0)
    return ToolCall(
        ID=_str(tc.get("id")),
        Function=ToolCallFunction(
            Index=index if isinstance(index, int) and not isinstance(index, bool) else 0,
            Name=_str(fn.get("name")),
            Arguments=Arguments(parse_arguments(fn.get("arguments"))),
        ),
    )


def message_view(m: dict[str, Any]) -> Message:
    images = m.get("images")
    calls = m.get("tool_calls")
    return Message(
        Role=_str(m.get("role")),
        Content=_str(m.get("content")),
        Thinking=_str(m.get("thinking")),
        Images=ImageList(images) if isinstance(images, list) and images else ImageList(is_nil=True),
        ToolCalls=ToolCallList(tool_call_view(c) for c in calls)
        if isinstance(calls, list) and calls
        else ToolCallList(is_nil=True),
        ToolName=_str(m.get("tool_name")),
        ToolCallID=_str(m.get("tool_call_id")),
    )


# -- Ollama's extra template functions -------------------------------------------------------------
def _today() -> datetime.date:
    return datetime.datetime.now().date()


OLLAMA_FUNCS: dict[str, GoFunc] = {
    "json": GoFunc(_json_or_empty, 1, value_args=False),
    "currentDate": GoFunc(lambda *a: _today().isoformat(), 0, variadic=True, string_args="all"),
    "yesterdayDate": GoFunc(
        lambda *a: (_today() - datetime.timedelta(days=1)).isoformat(), 0, variadic=True, string_args="all"
    ),
    "toTypeScriptType": GoFunc(
        lambda v: v.typescript_type() if isinstance(v, ToolProperty) else "any", 1, value_args=False
    ),
}
