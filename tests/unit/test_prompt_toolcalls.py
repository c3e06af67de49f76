"""The streaming tool-call parser (§6.6): tags, name matching, JSON extraction, chunking."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from pollama.prompt.toolcalls import ToolCallParser, extract_arguments


def tool(name: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": name, "parameters": {"type": "object", "properties": {}}},
    }


TOOLS = [tool("get_weather"), tool("get_time"), tool("get_weather_forecast")]


def call(index: int, name: str, **arguments: Any) -> dict[str, Any]:
    return {"function": {"index": index, "name": name, "arguments": arguments}}


def feed(p: ToolCallParser, chunks: list[str]) -> tuple[list[dict[str, Any]], str]:
    calls: list[dict[str, Any]] = []
    content = []
    for c in chunks:
        got, text = p.add(c)
        calls.extend(got)
        content.append(text)
    content.append(p.flush())
    return calls, "".join(content)


TAGGED = [
    (
        'Sure.<tool_call>{"name": "get_weather", "arguments": {"location": "Paris"}}</tool_call>',
        [call(0, "get_weather", location="Paris")],
        "Sure.",
    ),
    (
        '<tool_call>{"name":"get_weather","arguments":{"location":"A"}}</tool_call>\n'
        '<tool_call>{"name":"get_time","arguments":{}}</tool_call>',
        [call(0, "get_weather", location="A"), call(1, "get_time")],
        "",
    ),
    # the longest name wins at the same position
    (
        '<tool_call>{"name": "get_weather_forecast", "arguments": {"location": "B"}}</tool_call>',
        [call(0, "get_weather_forecast", location="B")],
        "",
    ),
    # the earliest name wins, even when a longer one appears later
    (
        '<tool_call>{"name": "get_time", "arguments": {"note": "then get_weather_forecast"}}',
        [call(0, "get_time", note="then get_weather_forecast")],
        "",
    ),
    # arguments given as a JSON string
    (
        '<tool_call>{"name": "get_weather", "arguments": "{\\"location\\": \\"C\\"}"}',
        [call(0, "get_weather", location="C")],
        "",
    ),
    (
        '<tool_call>{"name": "get_weather", "parameters": {"location": "D"}}',
        [call(0, "get_weather", location="D")],
        "",
    ),
    # the tool name as a key
    ('<tool_call>{"get_weather": {"location": "E"}}', [call(0, "get_weather", location="E")], ""),
    # nested object with a name
    (
        '<tool_call>{"function": {"name": "get_weather", "arguments": {"location": "F"}}}',
        [call(0, "get_weather", location="F")],
        "",
    ),
    # no wrapper at all: the object itself is the arguments
    ('<tool_call>get_weather {"location": "G"}', [call(0, "get_weather", location="G")], ""),
    # braces and quotes inside strings do not confuse the scanner
    (
        '<tool_call>{"name": "get_weather", "arguments": {"location": "a } b \\" { c"}}',
        [call(0, "get_weather", location='a } b " { c')],
        "",
    ),
    # an invalid object is skipped for the next valid one
    (
        '<tool_call>{bad} {"name": "get_weather", "arguments": {"location": "H"}}',
        [call(0, "get_weather", location="H")],
        "",
    ),
    # a call without arguments gets {}
    ('<tool_call>{"name": "get_time"}</tool_call>', [call(0, "get_time")], ""),
    # text after calls is dropped, as Ollama does
    ('<tool_call>{"name": "get_time", "arguments": {}}</tool_call> bye', [call(0, "get_time")], ""),
    # no tag: plain content
    ("The weather is 70°F in San Francisco.", [], "The weather is 70°F in San Francisco."),
    # something that only looks like the start of the tag
    ("Hi <tool_box> there", [], "Hi <tool_box> there"),
    # a call for a tool that was not offered: nothing parsed, the text comes back at the end
    (
        'ok <tool_call>{"name": "unknown", "arguments": {}}</tool_call>',
        [],
        'ok <tool_call>{"name": "unknown", "arguments": {}}</tool_call>',
    ),
    # an unfinished tag at the very end is returned, not lost
    ("text <tool_c", [], "text <tool_c"),
]


@pytest.mark.parametrize(("text", "calls", "content"), TAGGED)
def test_tagged_single_chunk(text: str, calls: list[dict[str, Any]], content: str) -> None:
    assert feed(ToolCallParser(TOOLS, "<tool_call>"), [text]) == (calls, content)


@pytest.mark.parametrize(("text", "calls", "content"), TAGGED)
def test_tagged_every_split_position(text: str, calls: list[dict[str, Any]], content: str) -> None:
    for i in range(len(text) + 1):
        assert feed(ToolCallParser(TOOLS, "<tool_call>"), [text[:i], text[i:]]) == (calls, content), i
    assert feed(ToolCallParser(TOOLS, "<tool_call>"), list(text)) == (calls, content)


BARE = [
    ('{"name": "get_weather", "arguments": {"location": "I"}}', [call(0, "get_weather", location="I")], ""),
    ('  \n{"name": "get_time", "arguments": {}}', [call(0, "get_time")], "  \n"),
    # any text before the JSON means this is an answer, not a call
    (
        'Hello {"name": "get_weather", "arguments": {"location": "I"}}',
        [],
        'Hello {"name": "get_weather", "arguments": {"location": "I"}}',
    ),
    # a JSON answer that is not a call is passed through once it is complete
    ('{"answer": 42} and more', [], '{"answer": 42} and more'),
    ("{ unfinished", [], "{ unfinished"),
]


@pytest.mark.parametrize(("text", "calls", "content"), BARE)
def test_bare_json_tag(text: str, calls: list[dict[str, Any]], content: str) -> None:
    for i in range(len(text) + 1):
        assert feed(ToolCallParser(TOOLS, "{"), [text[:i], text[i:]]) == (calls, content), i


def test_bracket_tag_with_a_list_of_calls() -> None:
    text = '[{"name": "get_weather", "arguments": {"location": "J"}}, {"name": "get_time", "arguments": {}}]'
    expected = [call(0, "get_weather", location="J"), call(1, "get_time")]
    for i in range(len(text) + 1):
        assert feed(ToolCallParser(TOOLS, "["), [text[:i], text[i:]]) == (expected, "")


def test_mistral_style_tag() -> None:
    text = '[TOOL_CALLS] [{"name": "get_weather", "arguments": {"location": "K"}}]'
    assert feed(ToolCallParser(TOOLS, "[TOOL_CALLS]"), [text]) == ([call(0, "get_weather", location="K")], "")


def test_content_before_the_tag_streams_immediately() -> None:
    p = ToolCallParser(TOOLS, "<tool_call>")
    assert p.add("Let me check") == ([], "Let me check")
    assert p.add(" the weather <tool") == ([], " the weather ")
    assert p.add('_call>{"name": "get_weather", ') == ([], "")
    assert p.add('"arguments": {"location": "L"}}') == ([call(0, "get_weather", location="L")], "")
    assert p.calls_made == 1


def test_name_is_not_decided_while_it_could_grow() -> None:
    p = ToolCallParser(TOOLS, "<tool_call>")
    # a complete object, but the text ends with a prefix of another tool name
    assert p.add('<tool_call>{"location": "M"} get_weather') == ([], "")
    assert p.add("_forecast") == ([call(0, "get_weather_forecast", location="M")], "")


def test_without_tools_nothing_is_parsed() -> None:
    assert feed(ToolCallParser([], "<tool_call>"), ['<tool_call>{"name": "x"}']) == (
        [],
        '<tool_call>{"name": "x"}',
    )
    assert feed(ToolCallParser(None), ['{"name": "x"}']) == ([], '{"name": "x"}')


@pytest.mark.parametrize(
    ("obj", "name", "args"),
    [
        ({"name": "f", "arguments": {"a": 1}}, "f", {"a": 1}),
        ({"name": "f", "parameters": '{"a": 2}'}, "f", {"a": 2}),
        ({"name": "f", "arguments": "not json"}, "f", {}),
        ({"f": {"a": 3}}, "f", {"a": 3}),
        ({"tool_calls": [{"name": "f", "arguments": {"a": 4}}]}, "f", {"a": 4}),
        ({"a": 5}, "f", {"a": 5}),
    ],
)
def test_extract_arguments(obj: dict, name: str, args: dict) -> None:
    assert extract_arguments(obj, name) == args


def test_nan_is_not_json() -> None:
    text = (
        '<tool_call>{"name": "get_time", "arguments": {"x": NaN}} {"name": "get_time", "arguments": {"x": 1}}'
    )
    calls, _ = feed(ToolCallParser(TOOLS, "<tool_call>"), [text])
    assert calls == [call(0, "get_time", x=1)]


def test_linear_time_on_a_long_call() -> None:
    value = "x" * 100_000
    text = '<tool_call>{"name": "get_weather", "arguments": {"location": "' + value + '"}}</tool_call>'
    p = ToolCallParser(TOOLS, "<tool_call>")
    start = time.perf_counter()
    calls: list[dict[str, Any]] = []
    for ch in text:
        calls.extend(p.add(ch)[0])
        if p._state == 1:  # inside a call: the scanner is caught up, it never rescans
            assert p._pos == len(p._buf) or p._obj is not None
    elapsed = time.perf_counter() - start
    assert calls == [call(0, "get_weather", location=value)]
    assert elapsed < 10.0  # quadratic rescanning would take far longer


def test_deeply_nested_json_does_not_crash() -> None:
    deep = '{"a":' * 5000 + "1" + "}" * 5000
    calls, content = feed(ToolCallParser(TOOLS, "<tool_call>"), ["<tool_call>get_time " + deep])
    assert calls == [] or calls[0]["function"]["name"] == "get_time"
    assert isinstance(json.dumps(calls), str) and isinstance(content, str)
