"""The OpenAI-compatible API with the official `openai` client and raw SSE: every /v1 route
streaming and not, Ollama's defaults and field mapping, and OpenAI-shaped errors."""

from __future__ import annotations

import base64
import json

import httpx
import jsonschema
import numpy as np
import openai
import pytest

from tests.conftest import MODEL
from tests.modelstore import unload_all

EMBED = "all-minilm"
USER = [{"role": "user", "content": "Write one short sentence about the sea."}]


@pytest.fixture(scope="module", autouse=True)
def _unload_after(server):
    yield
    unload_all(server.base_url)


@pytest.fixture
def oa(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="anything", timeout=300, max_retries=0)


def sse_events(response: httpx.Response) -> list[str]:
    """The `data:` payloads of an SSE body, checking the framing on the way."""
    text = response.text
    assert text.endswith("data: [DONE]\n\n")
    events = text.split("\n\n")
    assert events[-1] == ""
    payloads = []
    for event in events[:-1]:
        assert event.startswith("data: "), event
        payloads.append(event[len("data: ") :])
    assert payloads.pop() == "[DONE]"
    return payloads


def test_models(oa: openai.OpenAI, http: httpx.Client) -> None:
    ids = [m.id for m in oa.models.list().data]
    assert MODEL in ids and f"{EMBED}:latest" in ids
    m = oa.models.retrieve(MODEL)
    assert (m.id, m.object, m.owned_by) == (MODEL, "model", "library") and m.created > 0
    r = http.get("/v1/models/no-such-model")
    assert r.status_code == 404
    assert r.json() == {
        "error": {
            "message": "model 'no-such-model' not found",
            "type": "not_found_error",
            "param": None,
            "code": None,
        }
    }


def test_chat_non_streaming(oa: openai.OpenAI) -> None:
    r = oa.chat.completions.create(model=MODEL, messages=USER, max_tokens=6, temperature=0, seed=1)
    assert r.id.startswith("chatcmpl-") and r.object == "chat.completion"
    assert r.system_fingerprint == "fp_ollama" and r.model == MODEL
    choice = r.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason == "length"
    assert r.usage.completion_tokens == 6 and r.usage.prompt_tokens > 5
    assert r.usage.total_tokens == r.usage.prompt_tokens + 6


def test_chat_streaming_matches_and_framing(oa: openai.OpenAI, http: httpx.Client) -> None:
    body = {"model": MODEL, "messages": USER, "max_tokens": 6, "temperature": 0, "seed": 1}
    whole = oa.chat.completions.create(**body).choices[0].message.content
    r = http.post(
        "/v1/chat/completions", json={**body, "stream": True, "stream_options": {"include_usage": True}}
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    chunks = [json.loads(p) for p in sse_events(r)]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["created"] for c in chunks}) == 1 and len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    *content, finish, usage = chunks
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in content) == whole
    assert finish["choices"] == [{"index": 0, "delta": {}, "finish_reason": "length"}]
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == 6


def test_chat_stream_with_client_and_default_sampling(oa: openai.OpenAI) -> None:
    """No temperature/top_p means 1.0 (Ollama's /v1 defaults): same seed, same text as explicit 1.0."""
    explicit = (
        oa.chat.completions.create(
            model=MODEL, messages=USER, max_tokens=12, seed=7, temperature=1.0, top_p=1.0
        )
        .choices[0]
        .message.content
    )
    stream = oa.chat.completions.create(model=MODEL, messages=USER, max_tokens=12, seed=7, stream=True)
    pieces, reasons = [], []
    for chunk in stream:
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
            reasons.append(chunk.choices[0].finish_reason)
    assert "".join(pieces) == explicit
    assert reasons[-1] == "length" and all(r is None for r in reasons[:-1])


def test_response_format(oa: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"},
                       "ok": {"type": "boolean"}},
        "required": ["name", "age", "ok"],
    }  # fmt: skip
    r = oa.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "A person as JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}},
        temperature=0,
        max_tokens=80,
    )
    jsonschema.validate(json.loads(r.choices[0].message.content), schema)
    r = oa.chat.completions.create(
        model=MODEL, messages=USER, response_format={"type": "json_object"}, temperature=0, max_tokens=60
    )
    assert isinstance(json.loads(r.choices[0].message.content), dict)


def test_chat_logprobs(oa: openai.OpenAI) -> None:
    r = oa.chat.completions.create(
        model=MODEL, messages=USER, max_tokens=3, temperature=0, logprobs=True, top_logprobs=2
    )
    content = r.choices[0].logprobs.content
    assert len(content) == 3
    for entry in content:
        assert entry.logprob <= 0 and len(entry.top_logprobs) == 2
        assert entry.top_logprobs[0].logprob >= entry.top_logprobs[1].logprob
    assert "".join(e.token for e in content) == r.choices[0].message.content


def test_completions(oa: openai.OpenAI, http: httpx.Client) -> None:
    r = oa.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=5, temperature=0)
    assert r.object == "text_completion" and r.id.startswith("cmpl-")
    assert r.choices[0].text and r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 5
    body = {"model": MODEL, "prompt": "The capital of France is", "max_tokens": 5, "temperature": 0,
            "stream": True, "stream_options": {"include_usage": True}}  # fmt: skip
    chunks = [json.loads(p) for p in sse_events(http.post("/v1/completions", json=body))]
    assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == r.choices[0].text
    assert chunks[-1]["usage"]["completion_tokens"] == 5
    lp = oa.completions.create(model=MODEL, prompt="One, two,", max_tokens=2, temperature=0, logprobs=3)
    entries = lp.choices[0].logprobs.content  # Ollama's shape: the chat-style list
    assert len(entries) == 2 and all(len(e["top_logprobs"]) == 3 for e in entries)


def test_embeddings(oa: openai.OpenAI) -> None:
    r = oa.embeddings.create(model=EMBED, input=["the cat", "a kitten", "the stock market"])
    vecs = [np.array(d.embedding) for d in r.data]
    assert [d.index for d in r.data] == [0, 1, 2] and all(len(v) == 384 for v in vecs)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]
    assert r.usage.prompt_tokens == r.usage.total_tokens > 6
    b64 = oa.embeddings.create(model=EMBED, input="the cat", encoding_format="base64", dimensions=8)
    raw = b64.data[0].embedding
    if isinstance(raw, str):  # the SDK may decode base64 itself
        raw = np.frombuffer(base64.b64decode(raw), dtype="<f4")
    assert len(raw) == 8 and abs(np.linalg.norm(raw) - 1) < 1e-4
    assert np.allclose(np.array(raw), vecs[0][:8] / np.linalg.norm(vecs[0][:8]), atol=1e-5)


def test_context_size_from_the_body(oa: openai.OpenAI, http: httpx.Client) -> None:
    """Beyond Ollama: `num_ctx` in the body (the SDK's extra_body) sets the context size."""
    oa.chat.completions.create(model=MODEL, messages=USER, max_tokens=1, extra_body={"num_ctx": 1536})
    ps = {m["name"]: m for m in http.get("/api/ps").json()["models"]}
    assert ps[MODEL]["context_length"] == 1536


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v1/chat/completions", {"model": MODEL, "messages": []}, 400, "[] is too short - 'messages'"),
        ("/v1/chat/completions", {"model": "nope", "messages": USER}, 404, "model 'nope' not found"),
        ("/v1/chat/completions", {"model": "", "messages": USER}, 400, "model is required"),
        (
            "/v1/chat/completions",
            {"model": EMBED, "messages": USER},
            400,
            '"all-minilm" does not support chat',
        ),
        (
            "/v1/chat/completions",
            {"model": MODEL, "messages": USER, "top_logprobs": 21, "logprobs": True},
            400,
            "top_logprobs must be between 0 and 20",
        ),
        (
            "/v1/chat/completions",
            {
                "model": MODEL,
                "messages": [
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{bad"}}
                        ],
                    }
                ],
            },
            400,
            "invalid tool call arguments",
        ),
        (
            "/v1/chat/completions",
            {
                "model": MODEL,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
                        ],
                    }
                ],
            },
            400,
            "image URLs are not currently supported, please use base64 encoded data instead",
        ),
        (
            "/v1/chat/completions",
            {
                "model": MODEL,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "what is this?"},
                            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                        ],
                    }
                ],
            },
            400,
            "registry.ollama.ai/library/gemma3:270m-text does not support vision",
        ),
        (
            "/v1/chat/completions",
            {"model": MODEL, "messages": USER, "tools": [{"type": "function", "function": {"name": "f"}}]},
            400,
            "registry.ollama.ai/library/gemma3:270m-text does not support tools",
        ),
        (
            "/v1/chat/completions",
            {"model": MODEL, "messages": USER, "response_format": {"type": "json_schema", "json_schema": {}}},
            400,
            "response_format.json_schema.schema must be a JSON object",
        ),
        (
            "/v1/completions",
            {"model": MODEL, "prompt": "x", "suffix": "y"},
            400,
            "registry.ollama.ai/library/gemma3:270m-text does not support insert",
        ),
        ("/v1/completions", {"model": MODEL, "prompt": 5}, 400, "prompt must be a string"),
        ("/v1/embeddings", {"model": EMBED, "input": []}, 400, "invalid input"),
        ("/v1/embeddings", {"model": EMBED}, 400, "invalid input"),
        (
            "/v1/embeddings",
            {"model": EMBED, "input": "x", "encoding_format": "int8"},
            400,
            "Invalid value for 'encoding_format' = int8. Supported values: ['float', 'base64'].",
        ),
        (
            "/v1/embeddings",
            {"model": "nope", "input": "x"},
            404,
            'model "nope" not found, try pulling it first',
        ),
    ],
)
def test_errors_are_openai_shaped(
    http: httpx.Client, path: str, body: dict, status: int, message: str
) -> None:
    r = http.post(path, json=body)
    kind = {400: "invalid_request_error", 404: "not_found_error"}[status]
    assert (r.status_code, r.json()) == (
        status,
        {"error": {"message": message, "type": kind, "param": None, "code": None}},
    )


def test_client_raises_typed_errors(oa: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        oa.chat.completions.create(model="nope", messages=USER)
    with pytest.raises(openai.BadRequestError, match="too short"):
        oa.chat.completions.create(model=MODEL, messages=[])
