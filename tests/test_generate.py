"""/api/generate and the basics around it, against the real server and the bundled model."""

from __future__ import annotations

import json

import httpx
import ollama
import pytest

from tests.conftest import MODEL

GREEDY = {"temperature": 0, "num_predict": 12}


def test_root_and_version(http: httpx.Client):
    r = http.get("/")
    assert r.status_code == 200 and r.text == "Ollama is running"
    assert http.head("/").status_code == 200
    v = http.get("/api/version").json()
    assert v["version"].count(".") == 2 and v["pollama_version"]


def test_generate_streaming_equals_non_streaming(ollama_client: ollama.Client):
    whole = ollama_client.generate(model=MODEL, prompt="The capital of France is", options=GREEDY)
    parts = list(
        ollama_client.generate(model=MODEL, prompt="The capital of France is", options=GREEDY, stream=True)
    )
    assert whole.response
    assert "".join(p.response for p in parts) == whole.response
    final = parts[-1]
    assert final.done and final.done_reason == "length"
    assert all(not p.done for p in parts[:-1])
    for field in (
        "total_duration",
        "load_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
        "eval_count",
        "eval_duration",
    ):
        assert getattr(final, field) is not None, field
    assert final.eval_count == GREEDY["num_predict"]
    assert final.context and isinstance(final.context[0], int)


def test_stream_is_ndjson(http: httpx.Client):
    with http.stream("POST", "/api/generate", json={"model": MODEL, "prompt": "Hi", "options": GREEDY}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert lines[-1]["done"] is True
    assert lines[0]["model"] == MODEL and lines[0]["created_at"].endswith("Z")


def test_same_seed_same_output(ollama_client: ollama.Client):
    opts = {"temperature": 0.9, "seed": 1234, "num_predict": 16}
    a = ollama_client.generate(model=MODEL, prompt="Once upon a time", options=opts).response
    b = ollama_client.generate(model=MODEL, prompt="Once upon a time", options=opts).response
    assert a == b


def test_num_predict_and_length_reason(ollama_client: ollama.Client):
    r = ollama_client.generate(
        model=MODEL, prompt="Count: one, two,", options={"temperature": 0, "num_predict": 5}
    )
    assert r.eval_count == 5 and r.done_reason == "length"


def test_stop_string_is_not_emitted(ollama_client: ollama.Client):
    base = ollama_client.generate(model=MODEL, prompt="The capital of France is", options=GREEDY, raw=True)
    words = base.response.split()
    assert len(words) >= 3
    stop = words[2]
    r = ollama_client.generate(
        model=MODEL, prompt="The capital of France is", raw=True, options={**GREEDY, "stop": [stop]}
    )
    assert stop not in r.response
    assert base.response.startswith(r.response)
    assert r.done_reason == "stop"


def test_raw_skips_the_template_and_context(http: httpx.Client):
    body = {"model": MODEL, "prompt": "Hello", "raw": True, "stream": False, "options": GREEDY}
    r = http.post("/api/generate", json=body).json()
    assert "context" not in r
    templated = http.post("/api/generate", json={**body, "raw": False}).json()
    assert templated["prompt_eval_count"] != r["prompt_eval_count"] or "context" in templated


def test_context_continues_a_conversation(ollama_client: ollama.Client):
    first = ollama_client.generate(model=MODEL, prompt="My name is Ada.", options=GREEDY)
    second = ollama_client.generate(
        model=MODEL, prompt="What is my name?", context=first.context, options=GREEDY
    )
    # The first exchange is in the KV cache already: only the new turn is evaluated.
    fresh = len(first.context)
    assert second.prompt_eval_count < fresh
    assert len(second.context) > fresh


def test_debug_render_only_returns_the_prompt(http: httpx.Client):
    r = http.post("/api/generate", json={"model": MODEL, "prompt": "Hi there", "_debug_render_only": True})
    assert r.status_code == 200
    rendered = r.json()["_debug_info"]["rendered_template"]
    assert rendered == "<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n"


def test_long_prompt_is_truncated_or_refused(http: httpx.Client):
    long_prompt = "word " * 3000  # more than num_ctx=2048 tokens
    ok = http.post(
        "/api/generate",
        json={
            "model": MODEL,
            "prompt": long_prompt,
            "stream": False,
            "options": {"temperature": 0, "num_predict": 2},
        },
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["prompt_eval_count"] < 2048
    refused = http.post(
        "/api/generate",
        json={"model": MODEL, "prompt": long_prompt, "truncate": False, "options": {"num_predict": 2}},
    )
    assert refused.status_code == 400
    assert refused.json() == {"error": "the input length exceeds the context length"}


def test_generation_shifts_the_context_when_full(http: httpx.Client):
    opts = {"temperature": 0, "num_predict": 200, "num_ctx": 64}
    body = {"model": MODEL, "prompt": "Once upon a time", "raw": True, "stream": False, "options": opts}
    r = http.post("/api/generate", json=body).json()
    assert r["eval_count"] == 200 and r["done_reason"] == "length"
    no_shift = http.post("/api/generate", json={**body, "shift": False}).json()
    assert no_shift["done_reason"] == "length"
    assert no_shift["eval_count"] < 64


def test_logprobs(http: httpx.Client):
    body = {
        "model": MODEL,
        "prompt": "The sky is",
        "raw": True,
        "stream": False,
        "logprobs": True,
        "top_logprobs": 3,
        "options": {"temperature": 0, "num_predict": 3},
    }
    r = http.post("/api/generate", json=body).json()
    lps = r["logprobs"]
    assert len(lps) == 3
    for lp in lps:
        assert lp["logprob"] <= 0 and len(lp["top_logprobs"]) == 3
        # greedy: the chosen token is the most likely one
        assert lp["token"] == lp["top_logprobs"][0]["token"]
        assert bytes(lp["bytes"]).decode() == lp["token"]
    assert "".join(lp["token"] for lp in lps) == r["response"]


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (None, 400, "missing request body"),
        ({"model": ""}, 404, "model '' not found"),
        ({"model": "../../etc/passwd"}, 400, "invalid model name"),
        ({"model": "no-such-model"}, 404, "model 'no-such-model' not found"),
        (
            {"model": MODEL, "prompt": "x", "raw": True, "system": "s"},
            400,
            "raw mode does not support template, system, or context",
        ),
        ({"model": MODEL, "prompt": "x", "top_logprobs": 21}, 400, "top_logprobs must be between 0 and 20"),
        ({"model": MODEL, "prompt": "x", "keep_alive": "3600"}, 400, 'time: missing unit in duration "3600"'),
        (
            {"model": MODEL, "prompt": "x", "think": "very"},
            400,
            'invalid think value: "very" (must be "high", "medium", "low", "max", true, or false)',
        ),
        ({"model": MODEL, "prompt": "x", "think": True}, 400, f'"{MODEL}" does not support thinking'),
        (
            {"model": MODEL, "prompt": "x", "suffix": "y"},
            400,
            f"registry.ollama.ai/library/{MODEL} does not support insert",
        ),
        (
            {"model": MODEL, "prompt": "x", "options": {"stop": "x"}},
            400,
            'option "stop" must be of type array',
        ),
        (
            {"model": MODEL, "prompt": "x", "options": {"num_ctx": -5}},
            400,
            "num_ctx must be between 0 and 1048576",
        ),
        (
            {"model": MODEL, "prompt": "x", "options": {"temperature": "hot"}},
            400,
            'option "temperature" must be of type float',
        ),
    ],
)
def test_bad_requests(http: httpx.Client, body, status, error):
    r = http.post("/api/generate", content=b"" if body is None else json.dumps(body))
    assert (r.status_code, r.json()) == (status, {"error": error})


def test_bad_json_and_types(http: httpx.Client):
    r = http.post("/api/generate", content=b"{not json")
    assert r.status_code == 400 and "error" in r.json()
    r = http.post("/api/generate", json={"model": MODEL, "prompt": 5})
    assert r.status_code == 400
    assert r.json()["error"].startswith("json: cannot unmarshal number into Go struct field")
    r = http.post("/api/generate", content=b"\xff\xfe\x00garbage")
    assert r.status_code == 400


def test_router_errors_are_ollamas(http: httpx.Client):
    r = http.get("/api/generate")
    assert (r.status_code, r.text) == (405, "405 method not allowed")
    r = http.get("/api/nothing-here")
    assert (r.status_code, r.text) == (404, "404 page not found")


def test_server_survives_bad_input(http: httpx.Client, ollama_client: ollama.Client):
    for junk in (b"[]", b"null", b'"str"', b"1e999", b'{"model": {"a": 1}}', b'{"options": []}'):
        assert http.post("/api/generate", content=junk).status_code == 400
    assert ollama_client.generate(model=MODEL, prompt="Still alive?", options={"num_predict": 2}).done
