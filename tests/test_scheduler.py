"""Loading, keep_alive, /api/ps, concurrency, queue limits and disconnects, on real servers."""

from __future__ import annotations

import concurrent.futures
import json
import time

import httpx
import ollama

from tests.conftest import MODEL


def test_keep_alive_load_ps_and_unload(http: httpx.Client):
    r = http.post("/api/generate", json={"model": MODEL, "keep_alive": "10m"}).json()
    assert (r["done"], r["done_reason"], r["response"]) == (True, "load", "")
    [entry] = http.get("/api/ps").json()["models"]
    assert entry["name"] == MODEL and entry["model"] == MODEL
    assert entry["size"] > 250_000_000 and entry["size_vram"] == 0
    assert entry["context_length"] == 2048
    assert entry["details"]["family"] == "gemma3"
    assert len(entry["digest"]) == 64 and entry["expires_at"].endswith("Z")
    r = http.post("/api/generate", json={"model": MODEL, "keep_alive": 0}).json()
    assert r["done_reason"] == "unload"
    assert http.get("/api/ps").json()["models"] == []


def test_keep_alive_expires(http: httpx.Client):
    http.post(
        "/api/generate",
        json={"model": MODEL, "prompt": "Hi", "keep_alive": "1s", "options": {"num_predict": 1}},
    )
    deadline = time.monotonic() + 30
    while http.get("/api/ps").json()["models"] and time.monotonic() < deadline:
        time.sleep(0.3)
    assert http.get("/api/ps").json()["models"] == []


def test_negative_keep_alive_is_forever(http: httpx.Client):
    http.post("/api/generate", json={"model": MODEL, "keep_alive": -1})
    [entry] = http.get("/api/ps").json()["models"]
    assert entry["expires_at"].startswith("2") and int(entry["expires_at"][:4]) > 2100
    http.post("/api/generate", json={"model": MODEL, "keep_alive": 0})


def _greedy(client: ollama.Client, prompt: str, n: int) -> list[str]:
    """The response's first tokens, via logprobs (exact token boundaries)."""
    r = client.generate(
        model=MODEL, prompt=prompt, raw=True, logprobs=True, options={"temperature": 0, "num_predict": n}
    )
    return [lp.token for lp in r.logprobs]


# Prompts whose first 4 greedy tokens lead the runner-up by > 0.5 in log-probability when run
# alone: batch-shape numerics moved logprobs by up to ~0.2 here, so near-ties may flip.
PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    "The quick brown fox",
    "Water boils at",
    "Monday, Tuesday, Wednesday,",
    "1, 2, 3, 4,",
]


def test_parallel_requests_match_sequential_ones(server, ollama_client: ollama.Client, record_property):
    n = 24
    sequential = [_greedy(ollama_client, p, n) for p in PROMPTS]
    with concurrent.futures.ThreadPoolExecutor(len(PROMPTS)) as pool:
        parallel = list(pool.map(lambda p: _greedy(ollama_client, p, n), PROMPTS))
    full = 0
    for seq, par in zip(sequential, parallel, strict=True):
        assert len(par) == n
        # Batched and solo decoding agree on the first tokens; later ones may drift at
        # near-ties because llama.cpp's CPU kernels are not bit-identical across batch shapes.
        assert par[:4] == seq[:4]
        full += par == seq
    record_property("parallel_full_matches", f"{full}/{len(PROMPTS)}")
    print(f"parallel vs sequential: {full}/{len(PROMPTS)} full {n}-token outputs identical")


def test_disconnect_frees_the_slot(spawn_server):
    srv = spawn_server({"OLLAMA_NUM_PARALLEL": "1"})
    body = {
        "model": MODEL,
        "prompt": "Count to a million:",
        "raw": True,
        "options": {"num_predict": 100000, "temperature": 0},
    }
    with httpx.Client(base_url=srv.base_url, timeout=60) as client:
        with client.stream("POST", "/api/generate", json=body) as r:
            lines = r.iter_lines()
            for _ in range(3):
                assert json.loads(next(lines))["done"] is False
        # The connection is closed; the only slot must be free for the next request at once
        # (otherwise it would wait for 20,000 tokens, far beyond this request's timeout).
        r = client.post(
            "/api/generate",
            json={"model": MODEL, "prompt": "Hi", "stream": False, "options": {"num_predict": 2}},
        )
        assert r.status_code == 200 and r.json()["done"]


def test_queue_limit_answers_503(spawn_server):
    srv = spawn_server({"OLLAMA_NUM_PARALLEL": "1", "OLLAMA_MAX_QUEUE": "2"})
    body = {
        "model": MODEL,
        "prompt": "Tell me a story.",
        "stream": False,
        "options": {"num_predict": 40, "temperature": 0},
    }
    with httpx.Client(base_url=srv.base_url, timeout=120) as client:
        client.post("/api/generate", json={"model": MODEL})  # load first
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: client.post("/api/generate", json=body), range(8)))
    codes = sorted(r.status_code for r in results)
    assert set(codes) <= {200, 503} and 503 in codes and 200 in codes
    for r in results:
        if r.status_code == 503:
            assert r.json() == {"error": "server busy, please try again.  maximum pending requests exceeded"}
        else:
            assert r.json()["eval_count"] == 40
