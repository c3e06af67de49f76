"""A bounded load test on a real server with a small queue (`make soak` runs the long one).

Many concurrent clients send a mix of streaming and non-streaming generate and chat
requests and embeddings; some hang up mid-stream. Every request must either complete with
the right answer (the same greedy tokens as when it runs alone: no cross-talk between
batched sequences) or get Ollama's 503 — never a reset or a 5xx of another kind. Meanwhile
/api/version is polled and its latency recorded (reported, not asserted tightly: CI boxes
are small and shared). Afterwards the server is idle again (no queue, no busy slot) and its
RSS is back near the baseline taken after warm-up.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import os
import random
import statistics
import threading
import time
from collections import Counter

import httpx

from tests.conftest import MODEL

EMBED_MODEL = "all-minilm"
CLIENTS = int(os.environ.get("POLLAMA_LOAD_CLIENTS", "12"))
REQUESTS = int(os.environ.get("POLLAMA_LOAD_REQUESTS", "36"))
MAX_QUEUE = int(os.environ.get("POLLAMA_LOAD_QUEUE", "4"))
BUSY = {"error": "server busy, please try again.  maximum pending requests exceeded"}
# Prompts whose first 4 greedy tokens lead by > 0.5 logprob, raw and as chat (not near-ties)
PROMPTS = ["The capital of France is", "Monday, Tuesday, Wednesday,", "The quick brown fox", "1, 2, 3, 4,"]
OPTS = {"temperature": 0, "num_predict": 4}


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def _generate_body(prompt: str, stream: bool) -> dict:
    return {"model": MODEL, "prompt": prompt, "raw": True, "stream": stream, "options": OPTS}


def _chat_body(prompt: str, stream: bool) -> dict:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "stream": stream,
        "options": OPTS,
    }


def _read(r: httpx.Response, stream: bool, key: str) -> str:
    """The full text of a completed response; raises on an error line or a missing final object."""
    if not stream:
        r.read()
        body = r.json()
        assert body["done"] is True, body
        return body["response"] if key == "response" else body["message"]["content"]
    parts, done = [], False
    for line in r.iter_lines():
        if not line:
            continue
        obj = json.loads(line)
        assert "error" not in obj, obj
        parts.append(obj["response"] if key == "response" else obj["message"]["content"])
        done = obj["done"]
    assert done, "stream ended without a final object"
    return "".join(parts)


def test_concurrent_mixed_load_with_a_small_queue(spawn_server, record_property):
    proc = spawn_server({"OLLAMA_NUM_PARALLEL": "2", "OLLAMA_MAX_QUEUE": str(MAX_QUEUE)})
    client = httpx.Client(
        base_url=proc.base_url, timeout=300, limits=httpx.Limits(max_connections=CLIENTS + 4)
    )

    # references, one request at a time (also loads both models and warms the allocator)
    expected = {}
    for p in PROMPTS:
        expected["generate", p] = client.post("/api/generate", json=_generate_body(p, False)).json()[
            "response"
        ]
        chat = client.post("/api/chat", json=_chat_body(p, False)).json()
        expected["chat", p] = chat["message"]["content"]
        expected["embed", p] = client.post("/api/embed", json={"model": EMBED_MODEL, "input": p}).json()[
            "embeddings"
        ][0]
    baseline = _rss(proc.proc.pid)

    stop = threading.Event()
    version_latency: list[float] = []
    version_errors: list[str] = []

    def poll_version() -> None:
        with httpx.Client(base_url=proc.base_url, timeout=60) as c:
            while not stop.is_set():
                t = time.perf_counter()
                try:
                    r = c.get("/api/version")
                    if r.status_code != 200:
                        version_errors.append(f"{r.status_code} {r.text}")
                except httpx.HTTPError as exc:
                    version_errors.append(repr(exc))
                version_latency.append(time.perf_counter() - t)
                stop.wait(0.1)

    def one(i: int) -> str:
        rng = random.Random(i)
        outcome = send(rng)
        if outcome == "503":
            time.sleep(rng.uniform(0.2, 1.0))  # a client backs off before its next request
        return outcome

    def send(rng: random.Random) -> str:
        kind = rng.choice(["generate", "chat", "generate", "chat", "embed"])
        prompt = rng.choice(PROMPTS)
        if kind == "embed":
            r = client.post("/api/embed", json={"model": EMBED_MODEL, "input": prompt})
            if r.status_code == 503:
                assert r.json() == BUSY
                return "503"
            assert r.status_code == 200, r.text
            assert _cosine(r.json()["embeddings"][0], expected["embed", prompt]) > 0.999
            return "ok"
        stream = rng.random() < 0.6
        hang_up = stream and rng.random() < 0.3
        body = _generate_body(prompt, stream) if kind == "generate" else _chat_body(prompt, stream)
        with client.stream("POST", f"/api/{kind}", json=body) as r:
            if r.status_code == 503:
                r.read()
                assert r.json() == BUSY
                return "503"
            assert r.status_code == 200, r.read()
            if hang_up:  # read one line, then go away mid-stream
                next(r.iter_lines())
                return "hung up"
            text = _read(r, stream, "response" if kind == "generate" else "message")
        assert text == expected[kind, prompt], (kind, prompt, text, expected[kind, prompt])
        return "ok"

    poller = threading.Thread(target=poll_version)
    poller.start()
    started = time.monotonic()
    try:
        with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
            outcomes = Counter(pool.map(one, range(REQUESTS)))
    finally:
        stop.set()
        poller.join()
    took = time.monotonic() - started

    # idle again: no request left behind in the queue or a slot
    deadline = time.monotonic() + 60
    while True:
        metrics = client.get("/metrics").text
        idle = (
            "pollama_queue_depth 0.0" in metrics and f'pollama_slots_busy{{model="{MODEL}"}} 0.0' in metrics
        )
        if idle or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert idle, metrics
    for p in PROMPTS:  # and still right
        assert (
            client.post("/api/generate", json=_generate_body(p, False)).json()["response"]
            == expected["generate", p]
        )
    after = _rss(proc.proc.pid)
    client.close()

    lat = sorted(version_latency)
    p50, p99 = statistics.median(lat), lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    report = (
        f"{REQUESTS} requests from {CLIENTS} clients in {took:.1f}s: {dict(outcomes)}; "
        f"/api/version during load: n={len(lat)} p50={p50 * 1000:.0f}ms p99={p99 * 1000:.0f}ms "
        f"max={lat[-1] * 1000:.0f}ms; RSS baseline {baseline / 2**20:.0f} MiB, after {after / 2**20:.0f} MiB"
    )
    print(report)
    record_property("load", report)
    assert sum(outcomes.values()) == REQUESTS and outcomes["ok"] > 0
    assert not version_errors, version_errors[:5]
    assert lat[-1] < 30, "the event loop was blocked"  # a loose bound: only a stall trips it
    assert after < baseline + max(150 * 2**20, baseline // 4), report
