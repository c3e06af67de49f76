"""Structured outputs: `format` "json" or a JSON schema constrains decoding with a grammar."""

from __future__ import annotations

import json

import httpx
import jsonschema
import ollama
import pytest

from tests.conftest import MODEL

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 24},
        "age": {"type": "integer"},
        "height": {"type": "number"},
        "student": {"type": "boolean"},
        "colour": {"enum": ["red", "green", "blue"]},
        "pets": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 3},
        "address": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 20},
                "zip": {"type": "string", "pattern": "^[0-9]{5}$"},
            },
            "required": ["city", "zip"],
        },
    },
    "required": ["name", "age", "height", "student", "colour", "pets", "address"],
}


def test_format_json_always_parses(ollama_client: ollama.Client):
    for seed in (1, 2, 3):
        r = ollama_client.generate(
            model=MODEL,
            prompt="Describe a cat as JSON.",
            format="json",
            options={"temperature": 0.8, "seed": seed, "num_predict": 120},
        )
        if r.done_reason == "stop":
            assert isinstance(json.loads(r.response), dict)
        else:  # cut by num_predict: still a valid JSON prefix starting with an object
            assert r.response.lstrip().startswith("{")


def test_schema_output_validates(ollama_client: ollama.Client):
    r = ollama_client.chat(
        model=MODEL,
        messages=[{"role": "user", "content": "Invent a person and return it as JSON."}],
        format=PERSON,
        options={"temperature": 0, "num_predict": 300},
    )
    assert r.done_reason == "stop", r.message.content
    data = json.loads(r.message.content)
    jsonschema.validate(data, PERSON)


def test_schema_streaming_matches(http: httpx.Client):
    body = {
        "model": MODEL,
        "prompt": "A person:",
        "format": PERSON,
        "stream": False,
        "options": {"temperature": 0, "num_predict": 300},
    }
    whole = http.post("/api/generate", json=body).json()
    with http.stream("POST", "/api/generate", json={**body, "stream": True}) as r:
        streamed = "".join(json.loads(line).get("response", "") for line in r.iter_lines() if line)
    assert streamed == whole["response"]
    jsonschema.validate(json.loads(whole["response"]), PERSON)


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ("yaml", 'invalid format: "yaml"; expected "json" or a valid JSON Schema object'),
        (5, 'invalid format: 5; expected "json" or a valid JSON Schema object'),
        ({"type": "nope"}, "invalid JSON schema"),
        ({"$ref": "#/missing"}, "invalid JSON schema"),
        ({"type": "object", "properties": 3}, "invalid JSON schema"),
    ],
)
def test_bad_formats_are_400(http: httpx.Client, fmt, message):
    r = http.post("/api/generate", json={"model": MODEL, "prompt": "x", "format": fmt})
    assert r.status_code == 400
    assert r.json()["error"].startswith(message)


def test_server_survives_a_deeply_nested_schema(http: httpx.Client):
    depth = 2000  # built as text: Python's own json module cannot encode this deep
    schema = '{"type": "array", "items": ' * depth + '{"type": "string"}' + "}" * depth
    body = f'{{"model": "{MODEL}", "prompt": "x", "format": {schema}}}'
    r = http.post("/api/generate", content=body)
    assert 400 <= r.status_code < 500
    assert http.get("/api/version").status_code == 200
