"""/api/chat: rendering through the model's template, history, prefix reuse, errors."""

from __future__ import annotations

import httpx
import ollama
import pytest

from tests.conftest import MODEL

GREEDY = {"temperature": 0, "num_predict": 10}


def test_chat_streaming_equals_non_streaming(ollama_client: ollama.Client):
    messages = [{"role": "user", "content": "Name a colour."}]
    whole = ollama_client.chat(model=MODEL, messages=messages, options=GREEDY)
    parts = list(ollama_client.chat(model=MODEL, messages=messages, options=GREEDY, stream=True))
    assert whole.message.role == "assistant"
    assert "".join(p.message.content for p in parts) == whole.message.content
    assert parts[-1].done and parts[-1].done_reason in ("stop", "length")
    assert parts[-1].message.content == ""


def test_chat_renders_every_role(http: httpx.Client):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Bye"},
    ]
    r = http.post("/api/chat", json={"model": MODEL, "messages": messages, "_debug_render_only": True})
    assert r.status_code == 200, r.text
    # Ollama's gemma3 template folds the system prompt into the first user turn.
    assert r.json()["_debug_info"]["rendered_template"] == (
        "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n"
        "<start_of_turn>model\nHello!<end_of_turn>\n"
        "<start_of_turn>user\nBye<end_of_turn>\n"
        "<start_of_turn>model\n"
    )


def test_second_turn_evaluates_only_new_tokens(ollama_client: ollama.Client):
    history = [
        {
            "role": "user",
            "content": "Here is a long story about a lighthouse keeper. " * 20 + "Summarise it.",
        },
    ]
    first = ollama_client.chat(model=MODEL, messages=history, options={"temperature": 0, "num_predict": 16})
    history += [
        {"role": "assistant", "content": first.message.content},
        {"role": "user", "content": "Shorter, please."},
    ]
    second = ollama_client.chat(model=MODEL, messages=history, options={"temperature": 0, "num_predict": 4})
    assert first.prompt_eval_count > 200
    # Only the assistant's reply and the new user turn are new: well under the first prompt.
    assert second.prompt_eval_count < 40, second.prompt_eval_count


def test_model_system_and_roles_are_lower_cased(http: httpx.Client):
    r = http.post(
        "/api/chat",
        json={"model": MODEL, "messages": [{"role": "USER", "content": "Hi"}], "_debug_render_only": True},
    )
    assert "<start_of_turn>user\nHi" in r.json()["_debug_info"]["rendered_template"]


def test_load_and_unload_with_empty_messages(http: httpx.Client):
    r = http.post("/api/chat", json={"model": MODEL, "messages": []}).json()
    assert (r["done"], r["done_reason"], r["message"]) == (True, "load", {"role": "assistant", "content": ""})
    assert any(m["name"] == MODEL for m in http.get("/api/ps").json()["models"])
    r = http.post("/api/chat", json={"model": MODEL, "messages": [], "keep_alive": 0}).json()
    assert r["done_reason"] == "unload"
    assert http.get("/api/ps").json()["models"] == []


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"model": "", "messages": []}, 400, "model is required"),
        ({"model": "bad name!", "messages": []}, 400, "invalid model name"),
        ({"model": "missing:tag", "messages": []}, 404, "model 'missing:tag' not found"),
        (
            {
                "model": MODEL,
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "function", "function": {"name": "f"}}],
            },
            400,
            f"registry.ollama.ai/library/{MODEL} does not support tools",
        ),
        (
            {"model": MODEL, "messages": [{"role": "user", "content": "x", "images": ["%%%"]}]},
            400,
            "illegal base64 data at input byte 0",
        ),
        (
            {"model": MODEL, "messages": [{"role": "user", "content": "x", "images": ["aGVsbG8="]}]},
            400,
            f"registry.ollama.ai/library/{MODEL} does not support vision",
        ),
        ({"model": MODEL, "messages": [{"content": "no role"}]}, 400, None),
        ({"model": MODEL, "messages": "hello"}, 400, None),
    ],
)
def test_chat_bad_requests(http: httpx.Client, body, status, error):
    r = http.post("/api/chat", json=body)
    assert r.status_code == status
    if error:
        assert r.json() == {"error": error}
    else:
        assert isinstance(r.json()["error"], str)
