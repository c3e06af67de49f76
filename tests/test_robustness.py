"""Fuzzing the API from its own OpenAPI schema, and models that cannot load.

The fuzz run uses schemathesis to draw requests (valid ones and deliberately invalid ones)
for every operation in the server's /openapi.json and sends them to the shared real server
with the real model. Every answer must be a non-5xx response within the timeout, with an
`{"error": "..."}` body when it is a 4xx; afterwards the server still generates. The
budget is bounded: POLLAMA_FUZZ_EXAMPLES examples per operation and mode (default 10) and
POLLAMA_FUZZ_SECONDS in all (default 30); `make soak` raises both.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from typing import Any

import httpx
import ollama
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from tests.conftest import MODEL
from tests.serverproc import ServerProcess

EMBED_MODEL = "all-minilm"
FUZZ_EXAMPLES = int(os.environ.get("POLLAMA_FUZZ_EXAMPLES", "10"))
FUZZ_SECONDS = float(os.environ.get("POLLAMA_FUZZ_SECONDS", "30"))
# Options that would reload the runner with another context shape: a fuzz run that keeps
# reloading measures loading, not the API. They are fuzzed by the cases with unknown models.
# Operations whose valid cases are half the time aimed at the installed models. Never the
# ones that change the store (delete, copy, create): the shared server must keep its models.
AIMED = ("/api/generate", "/api/chat", "/api/embed", "/api/embeddings", "/api/show")
# Valid pulls and pushes go out to a registry over the network, and a failed one answers
# Ollama's 500 when not streaming; tests/test_registry.py covers them against a real registry.
NETWORK = ("/api/pull", "/api/push")
NETWORK = ("/api/pull", "/api/push")
RELOADING_OPTIONS = ("num_ctx", "num_batch", "num_thread", "num_gpu", "main_gpu", "use_mmap")


def _aim_at_real_model(path: str, body: dict[str, Any]) -> None:
    """Point a generated body at an installed model, with a short generation."""
    body["model"] = EMBED_MODEL if "embed" in path else MODEL
    body.pop("keep_alive", None)  # 0 would unload after every case
    options = body.get("options")
    if isinstance(options, dict):
        for key in RELOADING_OPTIONS:
            options.pop(key, None)
        options["num_predict"] = 4
    elif "embed" not in path:
        body["options"] = {"num_predict": 4}


def test_fuzz_the_api_from_its_openapi_schema(server: ServerProcess, record_property):
    import schemathesis
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(server.url("/openapi.json"))
    # pull and push talk to registries on the network: their faults are tests/test_registry.py's
    operations = [op for r in schema.get_all_operations() if (op := r.ok()).path not in NETWORK]
    assert {"/api/generate", "/api/chat", "/api/tags"} <= {op.path for op in operations}
    deadline = time.monotonic() + FUZZ_SECONDS
    statuses: Counter[int] = Counter()
    failures: list[str] = []

    def fuzz(op, mode) -> None:
        @settings(
            max_examples=FUZZ_EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=op.as_strategy(generation_mode=mode), real=st.booleans())
        def run(case, real: bool) -> None:
            if time.monotonic() > deadline or (mode == GenerationMode.POSITIVE and op.path in NETWORK):
                return
            if real and mode == GenerationMode.POSITIVE and isinstance(case.body, dict) and op.path in AIMED:
                _aim_at_real_model(op.path, case.body)
            try:
                r = case.call(base_url=server.base_url, timeout=60)
            except Exception as exc:  # a timeout (hang) or a reset (crash)
                failures.append(f"{op.method.upper()} {op.path} {case.body!r:.2000}: {exc!r}")
                return
            statuses[r.status_code] += 1
            where = f"{op.method.upper()} {op.path} {case.body!r:.2000} -> {r.status_code} {r.text:.300}"
            if r.status_code >= 500:
                failures.append(where)
            elif (
                r.status_code >= 400
                and op.method.upper() != "HEAD"  # no body by definition
                and r.text not in ("404 page not found", "405 method not allowed")
            ):
                try:
                    error = json.loads(r.text)["error"]
                    if op.path.startswith("/v1/"):  # OpenAI's shape: {"error": {"message": ...}}
                        error = error["message"]
                except (ValueError, KeyError, TypeError):
                    error = None
                if not (isinstance(error, str) and error):
                    failures.append("no error message: " + where)

        try:
            run()
        except Unsatisfiable:  # nothing invalid to send (an operation with no parameters)
            pass

    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(op, mode)
    # leave the shared server as other tests expect it: no embedding model loaded
    httpx.post(
        server.url("/api/embed"), json={"model": EMBED_MODEL, "input": [], "keep_alive": 0}, timeout=120
    )
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
    print(f"fuzz: {sum(statuses.values())} requests over {len(operations)} operations ({summary})")
    record_property("fuzz_statuses", summary)
    assert not failures, "\n".join(failures[:20])
    assert sum(statuses.values()) >= len(operations)  # the budget allowed a real run
    assert server.proc.poll() is None, server.log_tail()
    r = httpx.post(
        server.url("/api/generate"),
        json={"model": MODEL, "prompt": "Still there?", "stream": False, "options": {"num_predict": 2}},
        timeout=120,
    )
    assert r.status_code == 200 and r.json()["done"] is True


# -- models that cannot load ------------------------------------------------------------------


def _install(server: ServerProcess, name: str, data: bytes) -> None:
    """Write a model into the running server's store through the Store API, as create does."""
    from pollama.names import ModelName
    from pollama.store import Store
    from pollama.store.manifest import MEDIA_MODEL

    store = Store(server.models, noprune=True)
    layer = store.write_blob(data).layer(MEDIA_MODEL)
    config = {"model_format": "gguf", "model_family": "gemma3", "file_type": "Q4_K_M"}
    store.write_manifest(ModelName.parse(name), config, [layer])


def _remove(server: ServerProcess, name: str) -> None:
    from pollama.names import ModelName
    from pollama.store import Store

    Store(server.models, noprune=True).delete(ModelName.parse(name))


@pytest.mark.parametrize(
    ("kind", "make"),
    [
        ("truncated-gguf", lambda real: real[: 16 << 20]),  # metadata intact (6.5 MB), tensors cut
        ("not-a-gguf", lambda real: b"this is not a model file\n" * 1000),
        ("bad-header", lambda real: b"GGUF" + b"\xff" * 4096),
    ],
)
def test_a_broken_model_fails_to_load_clearly_and_others_keep_working(
    server: ServerProcess, ollama_client: ollama.Client, kind: str, make
):
    from pollama.names import ModelName
    from pollama.store import Store

    blob = Store(server.models, noprune=True).resolve(ModelName.parse(MODEL)).model_path
    with open(blob, "rb") as f:
        head = f.read(16 << 20)
    name = f"broken-{kind}:latest"
    _install(server, name, make(head))
    try:
        # listing and showing the store do not trip over it
        assert httpx.get(server.url("/api/tags"), timeout=60).status_code == 200
        with pytest.raises(ollama.ResponseError) as err:
            ollama_client.generate(model=name, prompt="Hi", options={"num_predict": 2})
        assert err.value.status_code == 500
        assert err.value.error.startswith(f"failed to load model {name.removesuffix(':latest')}")
        assert "not a valid GGUF file" in err.value.error
        assert name not in [m.model for m in ollama_client.ps().models]
        r = ollama_client.generate(model=MODEL, prompt="Hello", options={"num_predict": 3})
        assert r.done and r.eval_count
    finally:
        _remove(server, name)
    assert server.proc.poll() is None


def test_a_model_too_large_for_memory_is_refused_before_loading(server: ServerProcess, spawn_server):
    """Slots x num_ctx whose KV cache cannot fit in the available memory: Ollama's 500
    `model requires more system memory ...`, nothing allocated, and the server keeps serving."""
    from pollama.engine.llama import Model
    from pollama.names import ModelName
    from pollama.store import Store

    path = Store(server.models, noprune=True).resolve(ModelName.parse(MODEL)).model_path
    model = Model(path, vocab_only=True)
    per_token = model.kv_bytes_per_token()
    model.close()
    with open("/proc/meminfo") as f:
        available = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    num_ctx = 32768  # the model's trained context, the most a request may ask for
    slots = min(256, available // (per_token * num_ctx) + 2)
    assert per_token * num_ctx * slots > available  # else this machine could really load it
    big = spawn_server({"OLLAMA_NUM_PARALLEL": str(slots)})
    client = ollama.Client(host=big.base_url, timeout=120)
    with pytest.raises(ollama.ResponseError) as err:
        client.generate(model=MODEL, prompt="Hi", options={"num_ctx": num_ctx, "num_predict": 2})
    assert err.value.status_code == 500
    assert "model requires more system memory (" in err.value.error
    assert "than is available (" in err.value.error
    assert client.ps().models == []
    r = client.generate(model=MODEL, prompt="Hello", options={"num_ctx": 256, "num_predict": 3})
    assert r.done and r.eval_count
    assert big.proc.poll() is None
