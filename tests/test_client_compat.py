"""The official `ollama` client's everyday calls parse pollama's answers as they parse Ollama's."""

from __future__ import annotations

import ollama

from tests.conftest import MODEL


def test_list_shows_the_bundled_model(ollama_client: ollama.Client):
    models = {m.model: m for m in ollama_client.list().models}
    gemma = models[MODEL]
    assert gemma.size > 250_000_000 and len(gemma.digest) == 64
    assert gemma.details.family == "gemma3" and gemma.details.quantization_level == "Q4_K_M"
    assert gemma.details.parameter_size == "268.10M" and gemma.modified_at is not None


def test_ps_after_a_generate(ollama_client: ollama.Client):
    r = ollama_client.generate(model=MODEL, prompt="Hello", options={"num_predict": 2}, keep_alive="1m")
    assert r.done and r.eval_count <= 2 and r.total_duration > 0
    running = {m.model: m for m in ollama_client.ps().models}
    assert MODEL in running
    entry = running[MODEL]
    assert entry.size > 250_000_000 and entry.size_vram == 0 and entry.expires_at is not None
    assert entry.context_length == 2048


def test_chat_answers_as_the_assistant(ollama_client: ollama.Client):
    r = ollama_client.chat(
        model=MODEL, messages=[{"role": "user", "content": "Say hi."}], options={"num_predict": 3}
    )
    assert r.message.role == "assistant" and r.done_reason in ("stop", "length")
    assert r.prompt_eval_count > 0 and r.eval_count <= 3
