"""Tools and thinking end to end on the real model, with real templates (tests/fixtures):
the bundled weights under Qwen3's template (tools + thinking) and Qwen2.5's (tools + insert).

The base model does not call tools on its own, so calls are forced with `tool_choice` (a
grammar in the model's own call syntax) and the assertions are on the parsed structure.
Thinking uses a prompt the model copies deterministically at temperature 0.
"""

from __future__ import annotations

import json

import httpx
import ollama
import openai
import pytest

from tests.conftest import MODEL
from tests.modelstore import template, unload_all

TOOLS_MODEL = "qwen3-tools:latest"
FIM_MODEL = "qwen25-fim:latest"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "enum": ["Paris", "Tokyo", "Lima"]}},
            "required": ["city"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Current time in a time zone",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string", "maxLength": 20}},
            "required": ["zone"],
        },
    },
}
ASK = [{"role": "user", "content": "What is the weather in Tokyo?"}]
COPY = "Copy this line: <think>two plus two</think>4\n" * 3
THINK_OPTIONS = {"temperature": 0, "num_predict": 40, "stop": ["\n"]}


@pytest.fixture(scope="module", autouse=True)
def _unload_after(server):
    yield
    unload_all(server.base_url)


@pytest.fixture(scope="module")
def variants(server) -> None:
    """The bundled weights under real tools/thinking/insert templates, made with /api/create."""
    with httpx.Client(base_url=server.base_url, timeout=300) as http:
        for name, tmpl in ((TOOLS_MODEL, "qwen3.gotmpl"), (FIM_MODEL, "qwen2.5.gotmpl")):
            body = {"model": name, "from": MODEL, "template": template(tmpl),
                    "parameters": {"stop": ["<|im_end|>"]}, "stream": False}  # fmt: skip
            r = http.post("/api/create", json=body)
            assert (r.status_code, r.json()) == (200, {"status": "success"})


@pytest.fixture
def oa(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", timeout=300, max_retries=0)


def test_capabilities(variants, http: httpx.Client) -> None:
    tags = {m["name"]: m.get("capabilities", []) for m in http.get("/api/tags").json()["models"]}
    assert {"tools", "thinking"} <= set(tags[TOOLS_MODEL])
    assert {"tools", "insert"} <= set(tags[FIM_MODEL])


def test_named_tool_choice_forces_a_parsed_call_and_round_trips(variants, oa: openai.OpenAI, http) -> None:
    r = oa.chat.completions.create(
        model=TOOLS_MODEL,
        messages=ASK,
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        temperature=0,
        max_tokens=60,
    )
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.id.startswith("call_") and len(call.id) == 13 and call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments)["city"] in ("Paris", "Tokyo", "Lima")
    assert not choice.message.content

    # Feed the call and its result back: the template renders both, and the model answers.
    history = [
        *ASK,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "22 degrees and sunny"},
    ]
    again = oa.chat.completions.create(
        model=TOOLS_MODEL, messages=history, tools=[WEATHER], temperature=0, max_tokens=8
    )
    assert again.choices[0].finish_reason in ("stop", "length")
    native = http.post(
        "/api/chat",
        json={
            "model": TOOLS_MODEL,
            "messages": [
                *ASK,
                {"role": "assistant", "content": "", "tool_calls": [
                    {"function": {"name": "get_weather", "arguments": json.loads(call.function.arguments)}}]},
                {"role": "tool", "tool_name": "get_weather", "content": "22 degrees and sunny"},
            ],
            "tools": [WEATHER],
            "_debug_render_only": True,
        },
    ).json()["_debug_info"]["rendered_template"]  # fmt: skip
    city = json.loads(call.function.arguments)["city"]
    assert f'<tool_call>\n{{"name":"get_weather","arguments":{{"city":"{city}"}}}}' in native.replace(" ", "")
    assert "<tool_response>\n22 degrees and sunny\n</tool_response>" in native
    assert '"name":"get_weather"' in native.replace(" ", "")  # the tool list is in the system prompt


def test_required_tool_choice_streams_without_leaking_call_text(variants, http: httpx.Client) -> None:
    body = {"model": TOOLS_MODEL, "messages": ASK, "tools": [WEATHER, TIME], "tool_choice": "required",
            "temperature": 0, "max_tokens": 60, "stream": True}  # fmt: skip
    r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == 200
    chunks = [json.loads(e[6:]) for e in r.text.split("\n\n") if e.startswith("data: {")]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    content = "".join(d.get("content") or "" for d in deltas)
    assert "<tool_call" not in content and "{" not in content
    calls = [tc for d in deltas for tc in d.get("tool_calls") or ()]
    assert len(calls) == 1 and calls[0]["function"]["name"] in ("get_weather", "get_time")
    assert isinstance(json.loads(calls[0]["function"]["arguments"]), dict)
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_tool_choice_none_hides_the_tools(variants, http: httpx.Client) -> None:
    r = http.post(
        "/v1/chat/completions",
        json={"model": TOOLS_MODEL, "messages": ASK, "tools": [WEATHER], "tool_choice": "none",
              "temperature": 0, "max_tokens": 4},
    )  # fmt: skip
    assert r.status_code == 200
    assert "tool_calls" not in r.json()["choices"][0]["message"]
    bad = http.post(
        "/v1/chat/completions",
        json={"model": TOOLS_MODEL, "messages": ASK, "tools": [WEATHER],
              "tool_choice": {"type": "function", "function": {"name": "missing"}}},
    )  # fmt: skip
    assert bad.status_code == 400
    assert bad.json()["error"]["message"] == "tool_choice names a function that is not in tools: missing"


def test_thinking_is_split_from_content(variants, ollama_client: ollama.Client) -> None:
    msgs = [{"role": "user", "content": COPY}]
    r = ollama_client.chat(model=TOOLS_MODEL, messages=msgs, think=True, options=THINK_OPTIONS)
    assert (r.message.thinking, r.message.content) == ("two plus two", "4")
    thinking, content = [], []
    for chunk in ollama_client.chat(
        model=TOOLS_MODEL, messages=msgs, think=True, options=THINK_OPTIONS, stream=True
    ):
        thinking.append(chunk.message.thinking or "")
        content.append(chunk.message.content or "")
        assert "<think" not in content[-1] and "</think" not in (thinking[-1] + content[-1])
    assert ("".join(thinking), "".join(content)) == ("two plus two", "4")
    plain = ollama_client.chat(model=TOOLS_MODEL, messages=msgs, think=False, options=THINK_OPTIONS)
    assert not plain.message.thinking


def test_thinking_through_openai_reasoning(variants, oa: openai.OpenAI) -> None:
    r = oa.chat.completions.create(
        model=TOOLS_MODEL,
        messages=[{"role": "user", "content": COPY}],
        reasoning_effort="high",
        temperature=0,
        stop=["\n"],
        max_tokens=40,
    )
    msg = r.choices[0].message
    assert msg.content == "4" and msg.model_extra["reasoning"] == "two plus two"


def test_capability_errors(variants, http: httpx.Client) -> None:
    r = http.post("/api/chat", json={"model": MODEL, "messages": ASK, "think": True})
    assert (r.status_code, r.json()) == (400, {"error": f'"{MODEL}" does not support thinking'})
    r = http.post("/api/chat", json={"model": MODEL, "messages": ASK, "tools": [WEATHER]})
    assert r.json() == {"error": f"registry.ollama.ai/library/{MODEL} does not support tools"}
    r = http.post("/api/generate", json={"model": MODEL, "prompt": "def f(", "suffix": "return 1"})
    assert r.json() == {"error": f"registry.ollama.ai/library/{MODEL} does not support insert"}


def test_fill_in_the_middle(variants, http: httpx.Client, oa: openai.OpenAI) -> None:
    body = {"model": FIM_MODEL, "prompt": "def add(a, b):\n", "suffix": "\n    return c\n"}
    rendered = http.post("/api/generate", json={**body, "_debug_render_only": True}).json()
    assert rendered["_debug_info"]["rendered_template"] == (
        "<|fim_prefix|>def add(a, b):\n<|fim_suffix|>\n    return c\n<|fim_middle|>"
    )
    r = http.post(
        "/api/generate", json={**body, "stream": False, "options": {"num_predict": 4, "temperature": 0}}
    )
    assert r.status_code == 200 and r.json()["done"] and r.json()["eval_count"] >= 1
    c = oa.completions.create(
        model=FIM_MODEL, prompt=body["prompt"], suffix=body["suffix"], max_tokens=4, temperature=0
    )
    assert c.choices[0].finish_reason in ("stop", "length")
