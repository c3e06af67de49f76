"""GET /metrics (Prometheus) and the structured request log, on the shared server."""

from __future__ import annotations

import re

import httpx
import ollama
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import MODEL
from tests.serverproc import ServerProcess


def scrape(http: httpx.Client) -> dict[tuple[str, tuple], float]:
    r = http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_tokens_and_latency(http: httpx.Client, ollama_client: ollama.Client):
    ollama_client.generate(model=MODEL, prompt="Hi", options={"num_predict": 1})  # loaded
    before = scrape(http)
    r = ollama_client.generate(
        model=MODEL, prompt="Tell me a story.", options={"num_predict": 8, "temperature": 0}
    )
    chat = ollama_client.chat(
        model=MODEL, messages=[{"role": "user", "content": "Hello"}], options={"num_predict": 5}, stream=False
    )
    http.post("/api/generate", json={"model": "missing-model", "prompt": "x"})
    http.get("/api/no-such-route")
    after = scrape(http)

    def delta(name: str, **labels) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    gen = {"method": "POST", "route": "/api/generate"}
    assert delta("pollama_http_requests_total", **gen, status="200") == 1
    assert delta("pollama_http_requests_total", **gen, status="404") == 1
    assert delta("pollama_http_requests_total", method="POST", route="/api/chat", status="200") == 1
    assert delta("pollama_http_requests_total", method="GET", route="unmatched", status="404") == 1
    # the engine's own counts, as reported in the responses
    assert delta("pollama_tokens_generated_total", model=MODEL) == r.eval_count + chat.eval_count
    assert (
        delta("pollama_tokens_evaluated_total", model=MODEL) == r.prompt_eval_count + chat.prompt_eval_count
    )
    reasons = [r.done_reason, chat.done_reason]
    for reason in set(reasons):
        assert delta("pollama_generations_total", model=MODEL, reason=reason) == reasons.count(reason)
    assert delta("pollama_time_to_first_token_seconds_count", model=MODEL) == 2
    assert delta("pollama_time_to_first_token_seconds_sum", model=MODEL) > 0
    # one observation per generation of more than one token: its mean time per token
    multi = [x for x in (r, chat) if x.eval_count > 1]
    assert delta("pollama_time_per_output_token_seconds_count", model=MODEL) == len(multi)
    tpot = delta("pollama_time_per_output_token_seconds_sum", model=MODEL)
    assert abs(tpot - sum(x.eval_duration / 1e9 / x.eval_count for x in multi)) < 1e-6
    # scheduler state, read at scrape time
    assert value(after, "pollama_models_loaded") >= 1
    assert value(after, "pollama_slots_total", model=MODEL) == 4
    assert value(after, "pollama_slots_busy", model=MODEL) == 0
    assert value(after, "pollama_queue_depth") == 0
    assert value(after, "pollama_model_memory_bytes", model=MODEL) > 250_000_000


def test_streams_cut_short_are_counted_as_cancelled(http: httpx.Client):
    before = scrape(http)
    with http.stream(
        "POST",
        "/api/generate",
        json={"model": MODEL, "prompt": "Write a long essay.", "options": {"num_predict": 500}},
    ) as r:
        for n, _ in enumerate(r.iter_lines()):
            if n == 3:
                break
    # the server notices the disconnect at its next write; give it a moment
    for _ in range(100):
        after = scrape(http)
        if value(after, "pollama_generations_total", model=MODEL, reason="cancel") > value(
            before, "pollama_generations_total", model=MODEL, reason="cancel"
        ):
            break
    gen = value(after, "pollama_tokens_generated_total", model=MODEL) - value(
        before, "pollama_tokens_generated_total", model=MODEL
    )
    assert value(after, "pollama_generations_total", model=MODEL, reason="cancel") == 1 + value(
        before, "pollama_generations_total", model=MODEL, reason="cancel"
    )
    assert 4 <= gen < 500


def test_request_log_has_ids_and_no_bodies(server: ServerProcess, http: httpx.Client):
    r = http.post(
        "/api/generate",
        headers={"X-Request-Id": "trace-me-123"},
        json={"model": MODEL, "prompt": "secret prompt text", "stream": False, "options": {"num_predict": 1}},
    )
    assert r.headers["x-request-id"] == "trace-me-123"
    generated = http.get("/api/tags").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{16}", generated)
    # an id that could forge log fields is replaced, not echoed
    forged = http.get("/api/tags", headers={"X-Request-Id": 'x level=ERROR msg="forged"'}).headers[
        "x-request-id"
    ]
    assert re.fullmatch(r"[0-9a-f]{16}", forged)
    log = server.log_path.read_text(errors="replace")
    line = next(line for line in log.splitlines() if "request=trace-me-123" in line and "msg=request" in line)
    assert "level=INFO" in line and "method=POST" in line and "path=/api/generate" in line
    assert "status=200" in line and re.search(r"duration=\d+\.\d{3}s", line)
    assert f"request={generated}" in log
    assert "secret prompt text" not in log and "forged" not in log
    assert "level=DEBUG" not in log and "level=TRACE" not in log  # OLLAMA_DEBUG unset: INFO and up
    for line in log.splitlines():
        if line.startswith("time="):
            assert re.match(
                r"time=\S+ level=(TRACE|DEBUG|INFO|WARNING|ERROR|CRITICAL) source=\S+ msg=", line
            ), line
