"""Graceful shutdown: SIGTERM/SIGINT end open streams with an error line, refuse what is
queued with a 503, unload the models and exit 0 within a bounded time."""

from __future__ import annotations

import json
import signal
import threading
import time

import httpx
import pytest

from tests.conftest import MODEL

EXIT_BOUND_S = 60  # GRACE_SECONDS (10) + unloading, on a loaded 2-core box


def _stream(url: str, out: dict, key: str) -> None:
    body = {
        "model": MODEL,
        "prompt": "Write a very long essay about the sea.",
        "options": {"num_predict": 5000},
    }
    lines: list[dict] = []
    try:
        with httpx.stream("POST", url, json=body, timeout=120) as r:
            out[key + "_status"] = r.status_code
            for line in r.iter_lines():
                if line:
                    lines.append(json.loads(line))
    except httpx.HTTPError as exc:  # a reset instead of a clean end is a failure
        out[key + "_error"] = repr(exc)
    out[key] = lines


def test_sigterm_ends_streams_refuses_queued_unloads_and_exits_0(spawn_server):
    # one slot: the first request streams, the second waits in the queue for the slot
    proc = spawn_server({"OLLAMA_NUM_PARALLEL": "1"})
    url = proc.url("/api/generate")
    out: dict = {}
    first = threading.Thread(target=_stream, args=(url, out, "streaming"))
    first.start()
    deadline = time.monotonic() + 120
    while "streaming_status" not in out and time.monotonic() < deadline:
        time.sleep(0.05)
    second = threading.Thread(target=_stream, args=(url, out, "queued"))
    second.start()
    while httpx.get(proc.url("/metrics")).text.find("pollama_queue_depth 1.0") < 0:
        assert time.monotonic() < deadline, "the second request never queued"
        time.sleep(0.05)

    sent = time.monotonic()
    proc.proc.send_signal(signal.SIGTERM)
    rc = proc.proc.wait(EXIT_BOUND_S)
    took = time.monotonic() - sent
    first.join(30)
    second.join(30)

    assert rc == 0
    print(f"SIGTERM to exit with 2 open requests: {took:.2f}s")
    assert "streaming_error" not in out and "queued_error" not in out, out
    assert out["streaming_status"] == 200
    *chunks, last = out["streaming"]
    assert last == {"error": "server is shutting down"}
    assert all(c["done"] is False for c in chunks)
    assert out["queued_status"] == 503 and out["queued"] == [{"error": "server is shutting down"}]
    log = proc.log_path.read_text()
    assert "received SIGTERM, shutting down" in log
    assert f"unloaded {MODEL}" in log and 'msg="shut down"' in log
    with pytest.raises(httpx.ConnectError):  # nothing listens any more
        httpx.get(proc.url("/api/version"), timeout=5)


def test_sigint_on_an_idle_server_exits_0(spawn_server):
    proc = spawn_server()
    proc.proc.send_signal(signal.SIGINT)
    assert proc.proc.wait(EXIT_BOUND_S) == 0
    assert "received SIGINT, shutting down" in proc.log_path.read_text()
