"""Python's share of a running pollama server, sampled with py-spy (issue 5's per-token cost).

Starts pollama as `make bench` does (16 slots, 2 threads, the bundled model), drives N
streaming clients, and samples the whole process with `py-spy record --threads
--nonblocking` for the length of the load. In the runner thread every sample whose
innermost Python frame is the `llama_decode` call is decode time (llama.cpp's C code); the
rest is the engine loop's Python work (batch building, sampling, detokenising, handing
results over). The main thread is uvicorn's event loop (HTTP, JSON, streaming); idle
samples are not recorded, so its samples are its busy time.

  .venv/bin/python bench/profile_pyspy.py [clients=1,4,16] [tokens=128]

Prints a markdown table; the figures of the latest run are in bench/NOTES.md.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from contenders import BUILD, MODEL_NAME, Contender, pollama_server, python_of_venv
from load import run_load
from pollama.engine import runner
from prompts import PROMPTS

RATE = 200  # samples per second and thread
# The line of runner.py that calls llama_decode: samples whose innermost frame is it are C time.
DECODE_LINE = next(
    i for i, line in enumerate(Path(runner.__file__).read_text().splitlines(), 1) if "L.llama_decode(" in line
)


def classify(raw: Path) -> Counter[str]:
    """Samples per bucket: decode, runner-python, event-loop, other."""
    out: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, count = line.rsplit(" ", 1)
        frames = stack.split(";")
        thread = frames[0].split(": ", 1)[-1]
        if thread.startswith("runner"):
            decode = f"runner.py:{DECODE_LINE})" in frames[-1]
            out["decode" if decode else "runner-python"] += int(count)
        elif thread == "MainThread":
            out["event-loop"] += int(count)
        else:
            out["other"] += int(count)
    return out


def profile(clients: int, tokens: int) -> dict[str, float]:
    server = pollama_server(python_of_venv(), BUILD / "store")
    with tempfile.TemporaryDirectory() as tmp:
        server.start(Path(tmp))
        try:
            contender = Contender("pollama", server, "ollama", MODEL_NAME)
            asyncio.run(run_load(contender, 1, 1, 8, PROMPTS, tag=0))  # load the model, warm up
            raw = Path(tmp) / "raw.txt"
            spy = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("py-spy")),
                    "record",
                    "-p",
                    str(server.proc.pid),
                    "--threads",
                    "--nonblocking",
                    "--rate",
                    str(RATE),
                    "--format",
                    "raw",
                    "-o",
                    str(raw),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)  # py-spy attaches
            point = asyncio.run(run_load(contender, clients, 2, tokens, PROMPTS, tag=int(time.time())))
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
            buckets = classify(raw)
        finally:
            server.stop()
    per_token = 1e6 / RATE / max(point.tokens, 1)  # microseconds of one thread per sample, per token
    return {
        "clients": clients,
        "tok_s": point.tokens / point.wall,
        "python_share": buckets["runner-python"] / max(buckets["decode"] + buckets["runner-python"], 1),
        "runner_us": buckets["runner-python"] * per_token,
        "loop_us": buckets["event-loop"] * per_token,
        "decode_us": buckets["decode"] * per_token,
    }


def main() -> None:
    clients = [int(x) for x in (sys.argv[1] if len(sys.argv) > 1 else "1,4,16").split(",")]
    tokens = int(sys.argv[2]) if len(sys.argv) > 2 else 128
    rows = [profile(n, tokens) for n in clients]
    print(
        "| clients | tok/s | engine-loop Python per token | share of the runner thread | "
        "event loop per token | decode per token |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['clients']} | {r['tok_s']:.1f} | {r['runner_us']:.0f} us | {100 * r['python_share']:.1f}% "
            f"| {r['loop_us']:.0f} us | {r['decode_us'] / 1000:.1f} ms |"
        )


if __name__ == "__main__":
    main()
