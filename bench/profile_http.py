"""CPU that pollama's HTTP side spends per streamed token (event loop thread), measured from
/proc while N streaming clients run. CPU time, not wall time: robust on a shared machine.

  .venv/bin/python bench/profile_http.py [clients=1,4,16] [tokens=64] [api=ollama|openai]
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx

from contenders import BUILD, MODEL_NAME, Contender, pollama_server, python_of_venv
from load import complete, run_load
from prompts import PROMPTS

TICK = os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of every thread of `pid`."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / TICK
    return out


def main() -> None:
    clients = [int(x) for x in (sys.argv[1] if len(sys.argv) > 1 else "1,4,16").split(",")]
    n_tokens = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    api = sys.argv[3] if len(sys.argv) > 3 else "ollama"
    server = pollama_server(python_of_venv(), BUILD / "store")
    server.start(Path("/tmp"))
    c = Contender("pollama", server, api, MODEL_NAME)
    pid = server.proc.pid
    try:

        async def warm() -> None:
            async with httpx.AsyncClient(timeout=600) as client:
                await complete(client, c, "Hello", 4)

        asyncio.run(warm())
        for k in clients:
            before = thread_cpu(pid)
            point = asyncio.run(run_load(c, k, 2, n_tokens, PROMPTS, k))
            after = thread_cpu(pid)
            tokens = point.tokens
            main_cpu = after[pid] - before.get(pid, 0.0)
            total = sum(after.values()) - sum(before.values())
            print(
                f"clients={k:2d} {tokens} tokens, {point.summary()['aggregate_tps']:.1f} tok/s: event loop "
                f"{1e6 * main_cpu / tokens:6.0f} us/token, whole process {1e3 * total / tokens:6.2f} ms/token"
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
