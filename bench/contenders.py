"""The servers under test, each started on a loopback port with the same model file, threads
and context, and stopped (with its peak RSS read) at the end.

A `Server` is one process; a `Contender` is one API of one server (pollama serves both
/api/generate and /v1/completions from the same process, so they share a `Server`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUILD = HERE / ".build"

# The load conditions every contender gets (the issue: same model, threads, context).
THREADS = int(os.environ.get("BENCH_THREADS", "2"))  # the issue fixes 2; override only to iterate
CTX_PER_SEQ = 2048  # tokens per sequence (Ollama's num_ctx); the unified KV holds SLOTS x this
SLOTS = 16  # concurrent sequences (OLLAMA_NUM_PARALLEL / llama-server -np)
BATCH = 512  # n_batch = n_ubatch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in bytes (0 when it is gone)."""
    out = {"rss": 0, "peak_rss": 0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss"] = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                out["peak_rss"] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return out


@dataclass
class Server:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    health: str = "/health"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    memory: dict[str, int] = field(default_factory=dict)  # read just before stop

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, log_dir: Path, timeout: float = 300.0) -> None:
        argv = [a.replace("{port}", str(self.port)) for a in self.argv]
        env = {**os.environ, **{k: v.replace("{port}", str(self.port)) for k, v in self.env.items()}}
        self.log_path = log_dir / f"{self.name}.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")
            try:
                if httpx.get(self.base_url + self.health, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"{self.name} did not become healthy in {timeout:.0f}s; see {self.log_path}")

    def read_memory(self) -> dict[str, int]:
        return proc_memory(self.proc.pid) if self.proc else {"rss": 0, "peak_rss": 0}

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.memory = self.read_memory()
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@dataclass
class Contender:
    """One HTTP API of one server, as the load driver talks to it."""

    name: str
    server: Server
    api: str  # "ollama" (NDJSON /api/generate + /api/chat) or "openai" (SSE /v1/completions + /v1/chat)
    model: str


MODEL_NAME = "gemma3:270m-text"


def pollama_server(python: str, models: Path) -> Server:
    return Server(
        name="pollama",
        argv=[python, "-m", "pollama.server"],
        env={
            "OLLAMA_HOST": "127.0.0.1:{port}",
            "OLLAMA_MODELS": str(models),
            "OLLAMA_CONTEXT_LENGTH": str(CTX_PER_SEQ),
            "OLLAMA_NUM_PARALLEL": str(SLOTS),
            "OLLAMA_KEEP_ALIVE": "-1",
            "POLLAMA_NUM_THREADS": str(THREADS),
            "PYTHONUNBUFFERED": "1",
        },
        health="/",
    )


def llama_server(bin_dir: Path, model_file: Path) -> Server:
    return Server(
        name="llama-server",
        argv=[
            str(bin_dir / "llama-server"),
            *("-m", str(model_file), "--host", "127.0.0.1", "--port", "{port}"),
            *("-t", str(THREADS), "-tb", str(THREADS)),
            *("-c", str(CTX_PER_SEQ * SLOTS), "-np", str(SLOTS), "--kv-unified"),
            *("-b", str(BATCH), "-ub", str(BATCH)),
            "--no-webui",
            "--jinja",
        ],
    )


def llama_cpp_python_server(python: str, model_file: Path) -> Server:
    # Its defaults differ from llama.cpp's (flash attention off): set what the others use.
    return Server(
        name="llama-cpp-python",
        argv=[
            *(python, "-m", "llama_cpp.server", "--model", str(model_file)),
            *("--host", "127.0.0.1", "--port", "{port}"),
            *("--n_threads", str(THREADS), "--n_threads_batch", str(THREADS)),
            *("--n_ctx", str(CTX_PER_SEQ), "--n_batch", str(BATCH), "--n_ubatch", str(BATCH)),
            *("--flash_attn", "true"),
        ],
        health="/v1/models",
    )


def python_of_venv() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable
