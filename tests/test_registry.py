"""Pull and push against a real registry (Debian's docker-registry) on loopback.

One pollama server for the module (a clone of the session store, with a 2 s stall timeout
and HTTP_PROXY pointing at the fault proxy, which loopback names bypass). Small real GGUF
models are written into its store through the Store API; the bundled gemma3:270m-text
makes exactly one round trip. Faults come from the proxy (registry_harness.FaultProxy),
which also counts the blob bytes it serves, so resumption is measured, not assumed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from pollama.names import ModelName
from pollama.store import Store
from pollama.store.config import describe_gguf, new_config
from pollama.store.gguf_meta import read_gguf
from pollama.store.manifest import MEDIA_MODEL, MEDIA_PARAMS
from tests.registry_harness import (
    Fault,
    FaultProxy,
    RegistryProcess,
    TestCA,
    TokenIssuer,
    docker_registry,
    write_gguf,
)
from tests.serverproc import ServerProcess, clone_store

MB = 1 << 20
CLI = str(Path(sys.executable).with_name("pollama"))


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    docker_registry()  # installs it, or skips with apt's reason
    reg = RegistryProcess(tmp_path_factory.mktemp("registry")).start()
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def tls_registry(
    registry: RegistryProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RegistryProcess]:
    """A second registry on https, with a certificate from a test CA the lab server trusts
    (SSL_CERT_FILE): where a create pulls its missing base from, as Ollama does, over https."""
    root = tmp_path_factory.mktemp("tls-registry")
    reg = RegistryProcess(root, tls=TestCA(root / "tls")).start()
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def proxy(registry: RegistryProcess) -> Iterator[FaultProxy]:
    p = FaultProxy()
    p.upstream = registry.url
    p.start()
    yield p
    p.stop()


@dataclass
class Lab:
    server: ServerProcess
    registry: RegistryProcess
    proxy: FaultProxy
    root: Path
    tls: RegistryProcess

    @property
    def models(self) -> Path:
        return self.server.models

    def store(self) -> Store:
        return Store(self.models, noprune=False)

    def restart(self, sig: int = signal.SIGTERM) -> None:
        self.server.stop(sig)
        self.server = ServerProcess(
            self.models, self.root / "server.log", env=self.server_env(), home=self.home
        )
        self.server.start()

    @property
    def home(self) -> Path:
        return self.root / "home"

    def server_env(self) -> dict[str, str]:
        return {
            "POLLAMA_REGISTRY_STALL_TIMEOUT": "2",
            "HTTP_PROXY": f"http://{self.proxy.host}",
            "NO_PROXY": "unproxied.example",
            "SSL_CERT_FILE": str(self.tls.tls.ca),  # trust the https registry's test CA
        }

    # -- models
    def make_model(self, name: str, size: int, seed: int) -> ModelName:
        """A small real model (GGUF + params layer) written into the server's store."""
        store = self.store()
        gguf = write_gguf(self.root / f"tiny-{seed}.gguf", size, seed)
        blob = store.import_file(gguf)
        params = store.write_blob(json.dumps({"seed": seed}).encode())
        fields = describe_gguf([read_gguf(blob.path, max_array=0)])
        layers = [blob.layer(MEDIA_MODEL), params.layer(MEDIA_PARAMS)]
        parsed = ModelName.parse(name)
        store.write_manifest(parsed, new_config(fields, [layer.digest for layer in layers]), layers)
        gguf.unlink()
        return parsed

    def publish(self, repo: str, size: int, seed: int, *, tls: bool = False) -> tuple[str, Any]:
        """Push a fresh model straight to the registry, forget it locally, and return its name at
        the proxy (where the tests pull it from; with `tls`, at the https registry) and its
        local model record."""
        registry = self.tls if tls else self.registry
        direct = self.make_model(f"{registry.host}/{repo}", size, seed)
        model = self.store().resolve(direct)
        assert statuses(self.post("/api/push", {"model": str(direct), "insecure": not tls}))[-1] == "success"
        self.forget(str(direct))
        for layer in model.manifest.all_layers():
            assert not self.store().has_blob(layer.digest)
        return str(direct) if tls else f"{self.proxy.host}/{repo}", model

    def forget(self, name: str) -> None:
        self.store().delete(ModelName.parse(name))

    # -- requests
    def post(self, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        """POST a streaming request and return every object of the NDJSON answer."""
        with (
            httpx.Client(base_url=self.server.base_url, timeout=180) as http,
            http.stream("POST", path, json=body) as r,
        ):
            assert r.status_code == 200, r.read()
            return [json.loads(line) for line in r.iter_lines() if line.strip()]

    def partial_files(self) -> list[Path]:
        return [p for p in (self.models / "blobs").iterdir() if "-partial" in p.name]


def statuses(objs: list[dict[str, Any]]) -> list[str]:
    return [o.get("status") or f"error: {o.get('error')}" for o in objs]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(4 * MB):
            h.update(block)
    return "sha256:" + h.hexdigest()


@pytest.fixture(scope="module")
def lab(
    server: ServerProcess,
    registry: RegistryProcess,
    proxy: FaultProxy,
    tls_registry: RegistryProcess,
    tmp_path_factory,
) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("registry-lab")
    clone_store(server.models, root / "models")
    lab = Lab(None, registry, proxy, root, tls_registry)  # type: ignore[arg-type]
    lab.server = ServerProcess(
        root / "models", root / "server.log", env=lab.server_env(), home=lab.home
    ).start()
    yield lab
    lab.server.stop()


@pytest.fixture
def clean_proxy(proxy: FaultProxy) -> Iterator[FaultProxy]:
    proxy.reset()
    yield proxy
    proxy.reset()


def model_layer(model: Any) -> Any:
    return next(layer for layer in model.manifest.layers if layer.media_type == MEDIA_MODEL)


def assert_nothing_kept(lab: Lab, name: str, model: Any) -> None:
    """After a failed pull: no manifest, no blob of the model, no partial files."""
    store = lab.store()
    assert store.resolve(ModelName.parse(name)) is None
    for layer in model.manifest.all_layers():
        assert not store.has_blob(layer.digest), layer.digest
    assert lab.partial_files() == []


# -- the real model, once ----------------------------------------------------------------------


def test_bundled_model_round_trip_is_bit_identical(lab: Lab) -> None:
    import ollama

    store = lab.store()
    original = store.resolve(ModelName.parse("gemma3:270m-text"))
    assert original is not None
    manifest_bytes = original.manifest_path.read_bytes()
    blobs = {
        layer.digest: sha256_file(store.blob_path(layer.digest)) for layer in original.manifest.all_layers()
    }
    assert all(d == h for d, h in blobs.items())
    name = f"{lab.registry.host}/library/gemma3:270m-text"
    assert store.copy(original.name, ModelName.parse(name))

    client = ollama.Client(host=lab.server.base_url, timeout=300)
    pushed = list(client.push(name, insecure=True, stream=True))
    seen = [p.status for p in pushed]
    assert seen[0] == "retrieving manifest" and seen[-2:] == ["pushing manifest", "success"]
    model_digest = model_layer(original).digest
    bars = [p for p in pushed if p.digest == model_digest]
    assert bars and bars[-1].completed == bars[-1].total == model_layer(original).size
    assert {p.status for p in bars} == {f"pushing {model_digest[7:19]}"}

    # gone locally, blobs and all
    lab.forget("gemma3:270m-text")
    lab.forget(name)
    assert not any(store.has_blob(d) for d in blobs)

    # `pollama run` pulls the missing model first, then answers. The base model rambles on
    # until its context is full, so the test hangs up (ctrl-c) once the answer has begun.
    env = {**os.environ, "OLLAMA_HOST": lab.server.base_url.removeprefix("http://"), "PYTHONUNBUFFERED": "1"}
    run = subprocess.Popen(
        [CLI, "run", name, "--insecure", "The capital of France is"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    first: list[bytes] = []
    reader = threading.Thread(target=lambda: first.append(run.stdout.read(1)), daemon=True)
    reader.start()
    reader.join(240)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=60)
    assert first and first[0], err.decode()
    assert b"pulling manifest" in err and b"success" in err, err.decode()

    pulled = lab.store().resolve(ModelName.parse(name))
    assert pulled is not None
    assert pulled.manifest_path.read_bytes() == manifest_bytes
    assert pulled.digest == original.digest
    for digest in blobs:
        assert sha256_file(lab.store().blob_path(digest)) == digest
    listed = {m.model: m.digest for m in client.list().models}
    assert listed[name] == original.digest
    assert lab.partial_files() == []


# -- statuses, skips, mounts, errors (small models) --------------------------------------------


def test_push_and_pull_statuses(lab: Lab, clean_proxy: FaultProxy) -> None:
    name = str(lab.make_model(f"{lab.proxy.host}/test/tiny-status:v1", 3 * MB, seed=11))
    model = lab.store().resolve(ModelName.parse(name))
    manifest_bytes = model.manifest_path.read_bytes()
    digests = [layer.digest for layer in model.manifest.all_layers()]

    pushed = lab.post("/api/push", {"model": name, "insecure": True})
    assert statuses(pushed)[0] == "retrieving manifest"
    assert statuses(pushed)[-2:] == ["pushing manifest", "success"]
    for digest in digests:
        lines = [o for o in pushed if o.get("digest") == digest]
        assert lines and all(o["status"] == f"pushing {digest[7:19]}" for o in lines)
        assert lines[-1]["completed"] == lines[-1]["total"] > 0
    assert clean_proxy.upload_bytes >= model.size - 10_000  # the config is small; the rest went up

    # a second push sends nothing: every blob answers HEAD
    clean_proxy.reset()
    again = lab.post("/api/push", {"model": name, "insecure": True, "stream": True})
    assert statuses(again)[-1] == "success"
    assert clean_proxy.upload_bytes == 0
    assert not [r for r in clean_proxy.requests if r[0] == "POST"]

    lab.forget(name)
    pulled = lab.post("/api/pull", {"model": name, "insecure": True})
    seen = statuses(pulled)
    assert seen[0] == "pulling manifest"
    assert seen[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    for digest in digests:
        lines = [o for o in pulled if o.get("digest") == digest]
        assert lines and all(o["status"] == f"pulling {digest[7:19]}" for o in lines)
        assert lines[-1]["completed"] == lines[-1]["total"]
    assert lab.store().resolve(ModelName.parse(name)).manifest_path.read_bytes() == manifest_bytes

    # pulling what is there: one complete line per layer, no blob traffic, non-streaming answer
    clean_proxy.reset()
    r = httpx.post(
        lab.server.url("/api/pull"), json={"model": name, "insecure": True, "stream": False}, timeout=60
    )
    assert r.status_code == 200 and r.json() == {"status": "success"}
    assert clean_proxy.hits == []


def test_pull_replacing_a_model_removes_its_unused_layers(lab: Lab, clean_proxy: FaultProxy) -> None:
    name, published = lab.publish("test/tiny-replace:v1", MB, seed=12)
    local = lab.make_model(name, MB, seed=13)  # another model under the same name
    old_blob = model_layer(lab.store().resolve(local)).digest
    seen = statuses(lab.post("/api/pull", {"model": name, "insecure": True}))
    assert seen[-4:] == ["verifying sha256 digest", "writing manifest", "removing unused layers", "success"]
    assert not lab.store().has_blob(old_blob)
    assert lab.store().resolve(local).digest == published.digest
    lab.forget(name)


def test_push_mounts_blobs_from_another_repository(lab: Lab, clean_proxy: FaultProxy) -> None:
    first = str(lab.make_model(f"{lab.proxy.host}/test/mount-a:v1", 2 * MB, seed=14))
    assert statuses(lab.post("/api/push", {"model": first, "insecure": True}))[-1] == "success"
    second = f"{lab.proxy.host}/test/mount-b:v1"
    lab.store().copy(ModelName.parse(first), ModelName.parse(second))
    clean_proxy.reset()
    assert statuses(lab.post("/api/push", {"model": second, "insecure": True}))[-1] == "success"
    mounts = [r for r in clean_proxy.requests if r[0] == "POST" and "mount=sha256" in r[1]]
    assert mounts and all("from=test%2Fmount-a" in r[1] and r[2] == 201 for r in mounts)
    assert clean_proxy.upload_bytes == 0
    lab.forget(first)
    lab.forget(second)


def test_pull_and_push_errors(lab: Lab, clean_proxy: FaultProxy) -> None:
    url = lab.server.url
    missing = f"{lab.proxy.host}/test/not-there:v1"
    assert lab.post("/api/pull", {"model": missing, "insecure": True}) == [
        {"status": "pulling manifest"},
        {"error": "pull model manifest: file does not exist"},
    ]
    r = httpx.post(url("/api/pull"), json={"model": missing, "insecure": True, "stream": False}, timeout=60)
    assert (r.status_code, r.json()) == (500, {"error": "pull model manifest: file does not exist"})
    assert lab.store().resolve(ModelName.parse(missing)) is None

    r = httpx.post(url("/api/pull"), json={"model": f"http://{missing}"}, timeout=60)
    assert (r.status_code, r.json()) == (500, {"error": "insecure protocol http"})
    tls = lab.post("/api/pull", {"model": missing})  # https to a plain-http registry
    assert "cannot reach the registry" in tls[-1]["error"] and "--insecure" in tls[-1]["error"]

    # a registry that does not exist answers at once, plainly (the default one is unreachable here)
    unproxied = lab.post("/api/pull", {"model": "unproxied.example:1/test/x", "insecure": True})
    assert unproxied[-1]["error"].startswith(
        "pull model manifest: cannot reach the registry unproxied.example:1"
    )
    try:
        socket.getaddrinfo("registry.ollama.ai", 443)
        online = True
    except OSError:
        online = False
    if not online:
        default = lab.post("/api/pull", {"model": "pollama-test/does-not-exist:none"})
        assert default[-1] == {
            "error": "pull model manifest: cannot reach the registry registry.ollama.ai "
            "(https://registry.ollama.ai): Name or service not known"
        } or default[-1]["error"].startswith(
            "pull model manifest: cannot reach the registry registry.ollama.ai"
        )

    assert httpx.post(url("/api/pull"), json={"model": "a b"}, timeout=30).json() == {
        "error": "invalid model name"
    }
    r = httpx.post(url("/api/pull"), json={"model": missing, "insecure": "yes"}, timeout=30)
    assert r.status_code == 400 and "cannot unmarshal string" in r.json()["error"]
    r = httpx.post(url("/api/push"), json={}, timeout=30)
    assert (r.status_code, r.json()) == (400, {"error": "model is required"})
    pushed = lab.post("/api/push", {"model": missing, "insecure": True})
    assert statuses(pushed)[:2] == ["retrieving manifest", "couldn't retrieve manifest"]
    assert pushed[-1]["error"].endswith("test/not-there/v1: no such file or directory")

    nowhere = str(lab.make_model("127.0.0.1:1/test/tiny-nowhere:v1", 64 * 1024, seed=17))
    pushed = lab.post("/api/push", {"model": nowhere, "insecure": True})
    assert pushed[-1]["error"].startswith("cannot reach the registry 127.0.0.1:1 (http://127.0.0.1:1): ")
    lab.forget(nowhere)

    # the CLI shows the server's message and fails
    env = {**os.environ, "OLLAMA_HOST": url("").removeprefix("http://")}
    cli = subprocess.run(
        [CLI, "pull", missing, "--insecure"], env=env, capture_output=True, text=True, timeout=120
    )
    assert cli.returncode == 1
    assert "Error: pull model manifest: file does not exist" in cli.stderr


def test_cli_push_and_pull(lab: Lab, clean_proxy: FaultProxy) -> None:
    name = str(lab.make_model(f"{lab.proxy.host}/test/tiny-cli:v1", MB, seed=15))
    digest = lab.store().resolve(ModelName.parse(name)).digest
    env = {**os.environ, "OLLAMA_HOST": lab.server.base_url.removeprefix("http://")}
    push = subprocess.run(
        [CLI, "push", name, "--insecure"], env=env, capture_output=True, text=True, timeout=120
    )
    assert push.returncode == 0, push.stderr
    assert "success" in push.stderr and f"You can find your model at:\n\n\t{name}" in push.stdout
    lab.forget(name)
    pull = subprocess.run(
        [CLI, "pull", name, "--insecure"], env=env, capture_output=True, text=True, timeout=120
    )
    assert pull.returncode == 0, pull.stderr
    assert "verifying sha256 digest" in pull.stderr and "success" in pull.stderr
    assert lab.store().resolve(ModelName.parse(name)).digest == digest
    lab.forget(name)


def test_http_proxy_is_used_for_non_loopback_registries(lab: Lab, clean_proxy: FaultProxy) -> None:
    """HTTP_PROXY points at the fault proxy; a name it alone can resolve pulls through it."""
    _, published = lab.publish("test/tiny-proxied:v1", MB, seed=16)
    name = f"registry.proxied.example:{lab.registry.port}/test/tiny-proxied:v1"
    assert statuses(lab.post("/api/pull", {"model": name, "insecure": True}))[-1] == "success"
    assert clean_proxy.forwarded > 0
    assert lab.store().resolve(ModelName.parse(name)).digest == published.digest
    lab.forget(name)


# -- faults ------------------------------------------------------------------------------------


def test_dropped_connections_resume_without_refetching(lab: Lab, clean_proxy: FaultProxy) -> None:
    name, model = lab.publish("test/tiny-drop:v1", 24 * MB, seed=21)
    layer = model_layer(model)
    clean_proxy.faults[layer.digest] = Fault(layer.digest, drop_after=3 * MB, drops=3)
    assert statuses(lab.post("/api/pull", {"model": name, "insecure": True}))[-1] == "success"

    hits = clean_proxy.blob_hits(layer.digest)
    dropped = [h for h in hits if h.fault == "drop"]
    assert len(dropped) == 3
    for drop in dropped:  # each cut part went on from the byte where it stopped
        assert any(h.start == drop.start + drop.sent for h in hits if h is not drop), (drop, hits)
    assert clean_proxy.served(layer.digest) == layer.size  # not one byte twice
    assert sha256_file(lab.store().blob_path(layer.digest)) == layer.digest
    assert lab.partial_files() == []
    lab.forget(name)


def test_corrupted_byte_fails_the_pull_and_keeps_nothing(lab: Lab, clean_proxy: FaultProxy) -> None:
    name, model = lab.publish("test/tiny-corrupt:v1", 4 * MB, seed=22)
    layer = model_layer(model)
    clean_proxy.faults[layer.digest] = Fault(layer.digest, corrupt_at=layer.size // 2)
    out = lab.post("/api/pull", {"model": name, "insecure": True})
    error = out[-1]["error"]
    assert error.startswith(
        f"digest mismatch, file must be downloaded again: want {layer.digest}, got sha256:"
    )
    assert error != f"{layer.digest}"
    assert [h.fault for h in clean_proxy.blob_hits(layer.digest)] == ["corrupt"]
    assert_nothing_kept(lab, name, model)

    clean_proxy.faults.clear()  # the same pull works once the registry serves the right bytes
    assert statuses(lab.post("/api/pull", {"model": name, "insecure": True}))[-1] == "success"
    lab.forget(name)


def test_stalled_part_is_retried(lab: Lab, clean_proxy: FaultProxy) -> None:
    name, model = lab.publish("test/tiny-stall:v1", 6 * MB, seed=23)
    layer = model_layer(model)
    clean_proxy.faults[layer.digest] = Fault(layer.digest, stall_after=2 * MB, stalls=1, stall_for=10)
    assert statuses(lab.post("/api/pull", {"model": name, "insecure": True}))[-1] == "success"
    hits = clean_proxy.blob_hits(layer.digest)
    stalled = [h for h in hits if h.fault == "stall"]
    assert len(stalled) == 1
    assert any(h.start > stalled[0].start for h in hits if h is not stalled[0])  # resumed, not restarted
    assert sha256_file(lab.store().blob_path(layer.digest)) == layer.digest
    assert "stalled" in lab.server.log_path.read_text()
    lab.forget(name)


def test_failed_pull_of_a_missing_blob_keeps_no_model(lab: Lab, clean_proxy: FaultProxy, registry) -> None:
    """The registry loses a blob: the pull fails and the store keeps no half model."""
    name, model = lab.publish("test/tiny-lost:v1", MB, seed=24)
    config = model.manifest.config
    blob_dir = Path(
        registry.root, "data/docker/registry/v2/blobs/sha256", config.digest[7:9], config.digest[7:]
    )
    for path in blob_dir.iterdir():
        path.unlink()
    out = lab.post("/api/pull", {"model": name, "insecure": True})
    assert "error" in out[-1]
    assert lab.store().resolve(ModelName.parse(name)) is None
    assert lab.partial_files() == []


def read_parts(lab: Lab, digest: str) -> dict[int, tuple[int, int, int]]:
    """The saved part states of a download in progress: N -> (Offset, Size, Completed)."""
    parts = {}
    for path in (lab.models / "blobs").glob(f"sha256-{digest[7:]}-partial-*"):
        try:
            obj = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        parts[obj["N"]] = (obj["Offset"], obj["Size"], obj["Completed"])
    return parts


def settled_parts(lab: Lab, digest: str) -> dict[int, tuple[int, int, int]]:
    """The part states once they stop changing (the server has saved them)."""
    last, since = None, time.monotonic()
    while True:
        now = read_parts(lab, digest)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > 1.0:
            return now
        time.sleep(0.1)


def pull_until(lab: Lab, name: str, stop: Any) -> None:
    """Stream a pull and hang up once stop() says so."""
    with (
        httpx.Client(base_url=lab.server.base_url, timeout=120) as http,
        http.stream("POST", "/api/pull", json={"model": name, "insecure": True}) as r,
    ):
        for _ in r.iter_lines():
            if stop():
                return
    raise AssertionError("the pull finished before it could be interrupted")


def assert_resumed_from(hits: list[Any], parts: dict[int, tuple[int, int, int]]) -> None:
    """The next run asked exactly for the unfinished rest of each part, nothing of finished ones."""
    wanted = sorted(offset + done for offset, size, done in parts.values() if done < size)
    assert sorted(h.start for h in hits) == wanted


def test_cancelled_and_crashed_pulls_resume_from_their_parts(lab: Lab, clean_proxy: FaultProxy) -> None:
    name, model = lab.publish("test/tiny-resume:v1", 26 * MB, seed=25)  # parts of 8, 8, 8 and 2 MB
    layer = model_layer(model)
    clean_proxy.rate = 2 * MB  # per connection

    def some_part_done_and(fraction: float):
        def check() -> bool:
            parts = read_parts(lab, layer.digest)
            done = sum(c for _, _, c in parts.values())
            return any(c == s for _, s, c in parts.values()) and done >= fraction * layer.size

        return check

    # 1. the client hangs up: the download stops, its parts stay on disk
    pull_until(lab, name, some_part_done_and(0.35))
    after_cancel = settled_parts(lab, layer.digest)
    assert any(c == s for _, s, c in after_cancel.values())
    served_before = clean_proxy.served(layer.digest)
    assert served_before < layer.size

    # 2. the next pull asks only for what is missing; then the server is killed
    mark = len(clean_proxy.blob_hits(layer.digest))

    def doomed_pull() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the server is killed under it
            lab.post("/api/pull", {"model": name, "insecure": True})

    thread = threading.Thread(target=doomed_pull, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    start_done = sum(c for _, _, c in after_cancel.values())
    while sum(c for _, _, c in read_parts(lab, layer.digest).values()) < start_done + 4 * MB:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    lab.server.stop(signal.SIGKILL)
    thread.join(30)
    assert_resumed_from(clean_proxy.blob_hits(layer.digest)[mark:], after_cancel)
    after_kill = settled_parts(lab, layer.digest)
    assert sum(c for _, _, c in after_kill.values()) > start_done
    assert lab.store().resolve(ModelName.parse(name)) is None  # no half model after the crash

    # 3. a new server finishes from the saved parts, fetching only the missing bytes
    clean_proxy.rate = 0
    lab.restart()
    mark = len(clean_proxy.blob_hits(layer.digest))
    assert statuses(lab.post("/api/pull", {"model": name, "insecure": True}))[-1] == "success"
    resumed = clean_proxy.blob_hits(layer.digest)[mark:]
    assert_resumed_from(resumed, after_kill)
    assert sum(h.sent for h in resumed) == layer.size - sum(c for _, _, c in after_kill.values())
    assert sha256_file(lab.store().blob_path(layer.digest)) == layer.digest
    assert lab.partial_files() == []
    lab.forget(name)


def test_two_clients_share_one_download(lab: Lab, clean_proxy: FaultProxy) -> None:
    name, model = lab.publish("test/tiny-shared:v1", 16 * MB, seed=26)
    layer = model_layer(model)
    clean_proxy.rate = 4 * MB
    results: list[list[str]] = []

    def pull() -> None:
        results.append(statuses(lab.post("/api/pull", {"model": name, "insecure": True})))

    threads = [threading.Thread(target=pull) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert [r[-1] for r in results] == ["success", "success"]
    assert clean_proxy.served(layer.digest) == layer.size  # one download, both pulls
    lab.forget(name)


# -- create pulls a missing base (over https, as Ollama does) -----------------------------------


def tag_names(lab: Lab) -> set[str]:
    return {m["name"] for m in httpx.get(lab.server.base_url + "/api/tags", timeout=30).json()["models"]}


def test_create_pulls_a_missing_base_then_creates(lab: Lab) -> None:
    base, model = lab.publish("test/tiny-base:v1", 256 * 1024, seed=31, tls=True)
    layer = model_layer(model)
    created = lab.post("/api/create", {"model": "tiny-derived", "from": base, "system": "Be brief."})
    seen = statuses(created)
    # the pull's own statuses, its `success` included (Ollama streams them unchanged)...
    pulled = seen.index("success")
    assert seen[0] == "pulling manifest"
    assert seen[pulled - 2 : pulled] == ["verifying sha256 digest", "writing manifest"]
    bars = [o for o in created[:pulled] if o.get("digest") == layer.digest]
    assert bars and {o["status"] for o in bars} == {f"pulling {layer.digest[7:19]}"}
    assert bars[-1]["completed"] == bars[-1]["total"] == layer.size
    # ...then the create's
    rest = seen[pulled + 1 :]
    assert f"using existing layer {layer.digest}" in rest
    assert any(s.startswith("creating new layer sha256:") for s in rest)  # the system prompt
    assert rest[-2:] == ["writing manifest", "success"]

    assert {"tiny-derived:latest", base} <= tag_names(lab)
    store = lab.store()
    assert store.resolve(ModelName.parse(base)).digest == model.digest  # the registry's manifest, as pushed
    derived = store.resolve(ModelName.parse("tiny-derived"))
    assert layer.digest in {x.digest for x in derived.manifest.layers}
    assert derived.system == "Be brief."
    lab.forget("tiny-derived")
    lab.forget(base)


def test_create_from_a_model_no_registry_has_fails_with_the_pull_error(lab: Lab) -> None:
    url = lab.server.base_url + "/api/create"
    before = tag_names(lab)
    missing = f"{lab.tls.host}/test/not-there:v1"
    created = lab.post("/api/create", {"model": "tiny-orphan", "from": missing, "system": "x"})
    assert statuses(created) == ["pulling manifest", "error: pull model manifest: file does not exist"]
    r = httpx.post(url, json={"model": "tiny-orphan", "from": missing, "stream": False}, timeout=60)
    assert (r.status_code, r.json()) == (500, {"error": "pull model manifest: file does not exist"})
    # a name that says http is refused before anything streams, as /api/pull without insecure
    plain = f"http://{lab.registry.host}/test/not-there:v1"
    r = httpx.post(url, json={"model": "tiny-orphan", "from": plain}, timeout=60)
    assert (r.status_code, r.json()) == (500, {"error": "insecure protocol http"})
    r = httpx.post(lab.server.base_url + "/api/pull", json={"model": plain}, timeout=60)
    assert (r.status_code, r.json()) == (500, {"error": "insecure protocol http"})
    assert tag_names(lab) == before
    assert lab.store().resolve(ModelName.parse("tiny-orphan")) is None


def test_create_from_a_modelfile_pulls_its_missing_base(lab: Lab) -> None:
    base, model = lab.publish("test/tiny-mfbase:v1", 128 * 1024, seed=32, tls=True)
    body = {"model": "tiny-mf", "modelfile": f"FROM {base}\nPARAMETER top_k 7\n", "stream": False}
    r = httpx.post(lab.server.base_url + "/api/create", json=body, timeout=180)
    assert (r.status_code, r.json()) == (200, {"status": "success"})  # the last object only
    assert {"tiny-mf:latest", base} <= tag_names(lab)
    derived = lab.store().resolve(ModelName.parse("tiny-mf"))
    assert model_layer(model).digest in {x.digest for x in derived.manifest.layers}
    assert derived.params["top_k"] == 7
    lab.forget("tiny-mf")
    lab.forget(base)


def test_cli_create_shows_the_pull_of_its_base(lab: Lab, tmp_path: Path) -> None:
    base, model = lab.publish("test/tiny-clibase:v1", 128 * 1024, seed=33, tls=True)
    (tmp_path / "Modelfile").write_text(f"FROM {base}\nSYSTEM Be brief.\n")
    env = {**os.environ, "OLLAMA_HOST": lab.server.base_url.removeprefix("http://")}
    cli = subprocess.run(
        [CLI, "create", "tiny-cli-derived", "-f", str(tmp_path / "Modelfile")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    lines = cli.stderr.splitlines()
    short = model_layer(model).digest[7:19]
    assert lines.index("pulling manifest") < lines.index("writing manifest")
    assert any(x.startswith(f"pulling {short}: 100%") for x in lines), cli.stderr
    assert lines[-1] == "success"
    assert {"tiny-cli-derived:latest", base} <= tag_names(lab)
    lab.forget("tiny-cli-derived")
    lab.forget(base)


# -- auth --------------------------------------------------------------------------------------


def test_token_auth_with_signed_challenge(lab: Lab, tmp_path: Path) -> None:
    key_file = lab.home / ".ollama" / "id_ed25519"
    assert key_file.read_bytes().startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    assert key_file.stat().st_mode & 0o777 == 0o600
    public = (lab.home / ".ollama" / "id_ed25519.pub").read_text()
    assert public.startswith("ssh-ed25519 ") and public.endswith("\n")

    issuer = TokenIssuer(trusted_keys={public.split()[1]})
    gate = FaultProxy(token=issuer).start()
    reg = RegistryProcess(tmp_path / "auth-registry", token=issuer, realm=f"http://{gate.host}/token").start()
    gate.upstream = reg.url
    try:
        assert httpx.get(f"{reg.url}/v2/test/tiny-auth/tags/list", timeout=10).status_code == 401
        name = str(lab.make_model(f"{gate.host}/test/tiny-auth:v1", MB, seed=31))
        digest = lab.store().resolve(ModelName.parse(name)).digest
        assert statuses(lab.post("/api/push", {"model": name, "insecure": True}))[-1] == "success"
        assert issuer.requests and all(r["refused"] is None for r in issuer.requests)
        scopes = {v for r in issuer.requests for k, v in r["params"] if k == "scope"}
        assert any(
            s.startswith("repository:test/tiny-auth:")
            and set(s.rsplit(":", 1)[1].split(",")) == {"pull", "push"}
            for s in scopes
        )

        lab.forget(name)
        assert statuses(lab.post("/api/pull", {"model": name, "insecure": True}))[-1] == "success"
        assert lab.store().resolve(ModelName.parse(name)).digest == digest

        # a key the token server does not know gets no token, and the pull keeps nothing
        lab.forget(name)
        issuer.trusted_keys.clear()
        out = lab.post("/api/pull", {"model": name, "insecure": True})
        assert out[-1]["error"].startswith("pull model manifest: 401: ") and "unknown key" in out[-1]["error"]
        assert lab.store().resolve(ModelName.parse(name)) is None
    finally:
        reg.stop()
        gate.stop()
