"""Shared fixtures: one real server for the session, and fresh ones for tests that need their own.

`server` is a `pollama serve` process on a free loopback port with a temporary
OLLAMA_MODELS; the bundled models are registered into it at start-up exactly as on a
user's machine. Tests talk to it with the official `ollama` and `openai` clients and raw
httpx. `spawn_server(**env)` starts another server on a clone of that store (blobs shared
through hard links), for tests that need other settings or that kill the process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.serverproc import ServerProcess, clone_store

MODEL = "gemma3:270m-text"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("pollama")
    proc = ServerProcess(root / "models", root / "server.log", home=root / "home").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def cli_server(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The CLI tests' own server: a clone of the session store plus their short-answer models
    (tests/cli_support.py), so their loads, stops and extra models never show in other tests."""
    from tests.cli_support import install_cli_models

    root = tmp_path_factory.mktemp("pollama-cli")
    models = clone_store(server.models, root / "models")
    install_cli_models(models)
    proc = ServerProcess(models, root / "server.log", home=root / "home").start()
    yield proc
    proc.stop()


@pytest.fixture
def spawn_server(server: ServerProcess, tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(env: dict[str, str] | None = None, *, clone: bool = True) -> ServerProcess:
        models = tmp_path / f"models{len(started)}"
        if clone:
            clone_store(server.models, models)
        proc = ServerProcess(models, tmp_path / f"server{len(started)}.log", env=env, home=tmp_path / "home")
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=120.0) as client:
        yield client


@pytest.fixture
def ollama_client(server: ServerProcess):
    import ollama

    return ollama.Client(host=server.base_url, timeout=120.0)
