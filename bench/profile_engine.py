"""How much Python the engine loop costs per generated token, measured in CPU time.

Runs pollama's Runner in-process (no HTTP) on the bundled model with N concurrent greedy
streams and times, in the runner thread, the CPU spent inside llama_decode and the CPU
spent in everything else of a step (batch building, sampling, detokenising, stop checks,
handing results to the event loop). Thread CPU time (not wall time) is used because this
machine is shared: preemption inflates wall time, not CPU time. The event loop's share of
the work is measured separately (it runs in the server's main thread): see bench/NOTES.md.

  .venv/bin/python bench/profile_engine.py [streams=1,4,16] [tokens=64] [threads=2]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

import llama_cpp as L

from contenders import BUILD
from pollama.engine.llama import Model
from pollama.engine.runner import GenerationRequest, Runner, RunnerConfig
from pollama.engine.sampling import SamplingParams
from prompts import PROMPTS


class DecodeTimer:
    """Wraps llama_decode (looked up at call time by the runner) to time it per call."""

    def __init__(self) -> None:
        self.real = L.llama_decode
        self.calls: list[tuple[float, float, int]] = []  # (wall s, thread cpu s, tokens)

    def __call__(self, ctx, batch) -> int:
        w, c = time.perf_counter(), time.thread_time()
        rc = self.real(ctx, batch)
        self.calls.append((time.perf_counter() - w, time.thread_time() - c, batch.n_tokens))
        return rc


def main() -> None:
    streams = [int(x) for x in (sys.argv[1] if len(sys.argv) > 1 else "1,4,16").split(",")]
    n_tokens = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    model_path = max((BUILD / "store" / "blobs").glob("sha256-*"), key=lambda p: p.stat().st_size)
    model = Model(Path(model_path))
    runner = Runner(model, RunnerConfig(num_ctx=2048, num_parallel=max(streams), num_threads=threads))
    timer = DecodeTimer()
    L.llama_decode = timer
    steps: list[tuple[float, float, float, int]] = []  # (step cpu, decode wall, decode cpu, tokens)
    real_step = runner._step

    def timed_step() -> None:
        before = len(timer.calls)
        c = time.thread_time()
        real_step()
        cpu = time.thread_time() - c
        if len(timer.calls) > before:
            steps.append((cpu, *timer.calls[-1]))

    runner._step = timed_step
    greedy = SamplingParams(temperature=0.0)

    async def run(n: int) -> tuple[float, int]:
        reqs = [
            GenerationRequest(
                prompt=model.tokenize(f"Stream {i}.\n{PROMPTS[i % len(PROMPTS)]}"), sampling=greedy
            )
            for i in range(n)
        ]
        for r in reqs:
            r.num_predict = n_tokens
        t = time.perf_counter()
        gens = [runner.submit(r) for r in reqs]
        tokens = 0

        async def drain(g) -> None:
            nonlocal tokens
            async for ev in g:
                tokens += len(getattr(ev, "tokens", ()))

        await asyncio.gather(*(drain(g) for g in gens))
        return time.perf_counter() - t, tokens

    asyncio.run(run(1))  # warm-up
    print(f"threads={threads} tokens/stream={n_tokens}")
    for n in streams:
        steps.clear()
        wall, tokens = asyncio.run(run(n))
        # steady state: steps that decode exactly one token for each of the n streams
        pure = [s for s in steps if s[3] == n] or steps
        dec_wall = statistics.median(s[1] for s in pure) * 1000
        dec_cpu = statistics.median(s[2] for s in pure) * 1000
        py = statistics.median(s[0] - s[2] for s in pure) * 1000
        print(
            f"streams={n:2d} {tokens / wall:6.1f} tok/s  decode step median {dec_wall:6.2f} ms wall, "
            f"{dec_cpu:6.2f} ms cpu | python per step {py * 1000:6.0f} us = {py * 1000 / n:5.0f} us/token "
            f"= {100 * py / dec_wall:4.1f}% of a decode step"
        )
    runner.close()


if __name__ == "__main__":
    main()
