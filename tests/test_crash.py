"""Crash consistency: kill -9 the server while it writes to the store, restart, and check
that the store lists only complete models, every manifest's blobs exist and verify, and
the orphans of the dead writer are cleaned.

Kill points: the first-start registration of the bundled models (a 250 MB blob copy),
a blob upload mid-body, a create and a delete just after they were sent. (Pull belongs
here too once the registry routes exist.)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from tests.conftest import MODEL
from tests.serverproc import ServerProcess

TEMP_PREFIX = ".pollama-tmp-"
STALE = 16 * 60
KILL_POINTS = (
    (1 << 20, 160 << 20) if os.environ.get("POLLAMA_SOAK") else (1 << 20,)
)  # older than the store's STALE_TEMP_AGE: what a restart may delete


def _start_unready(proc: ServerProcess) -> subprocess.Popen:
    """Start the server without waiting for it to serve (it is still writing the store)."""
    log = open(proc.log_path, "ab")  # noqa: SIM115 - the process owns it until killed
    return subprocess.Popen([sys.executable, "-m", "pollama.server"], env=proc.env, stdout=log, stderr=log)


GEMMA_MANIFEST = "manifests/registry.ollama.ai/library/gemma3/270m-text"


def _wait_for_temp(models: Path, min_bytes: int, child: subprocess.Popen, timeout: float = 120) -> bool:
    """Until a temp blob has min_bytes (True), or the registration got past the copy (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert child.poll() is None, "the server exited before the kill point"
        for path in (models / "blobs").glob(TEMP_PREFIX + "*") if (models / "blobs").exists() else ():
            try:
                if path.stat().st_size >= min_bytes:
                    return True
            except FileNotFoundError:
                continue
        if (models / GEMMA_MANIFEST).exists():
            return False
        time.sleep(0.005)
    raise AssertionError(f"no temp file of {min_bytes} bytes appeared")


_hashed: dict[tuple, str] = {}


def _sha256(path: Path) -> str:
    st = path.stat()
    key = (path, st.st_size, st.st_mtime_ns, st.st_ino)
    if key not in _hashed:
        _hashed[key] = _hash(path)
    return _hashed[key]


def _hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _verify_store(models: Path) -> list[str]:
    """Every manifest parses and every blob it names exists with its size and digest."""
    names = []
    for manifest in (models / "manifests").rglob("*"):
        if not manifest.is_file():
            continue
        assert not manifest.name.startswith(TEMP_PREFIX), f"half-written manifest left: {manifest}"
        data = json.loads(manifest.read_bytes())
        for layer in [data["config"], *data["layers"]]:
            blob = models / "blobs" / layer["digest"].replace(":", "-")
            assert blob.is_file(), f"{manifest} names a missing blob {layer['digest']}"
            assert blob.stat().st_size == layer["size"]
            assert "sha256:" + _sha256(blob) == layer["digest"], f"{blob} does not match its digest"
        names.append(manifest.relative_to(models / "manifests").as_posix())
    for blob in (models / "blobs").iterdir():  # every final blob name is a verified digest
        if blob.name.startswith("sha256-") and len(blob.name) == 71:
            assert "sha256-" + _sha256(blob) == blob.name, f"{blob} is not what its name says"
    return names


def test_kill_9_during_bundled_registration_then_restart(tmp_path: Path):
    models = tmp_path / "models"
    proc = ServerProcess(models, tmp_path / "server.log", home=tmp_path / "home")
    # kill points: early in the 250 MB copy (and late in it too under `make soak`)
    for min_bytes in KILL_POINTS:
        child = _start_unready(proc)
        try:
            mid_copy = _wait_for_temp(models, min_bytes, child)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(30)
        _verify_store(models)  # whatever the crash left is complete and verifies
        if mid_copy:  # the manifest comes only after its blob is complete
            assert not (models / GEMMA_MANIFEST).exists()
    orphans = list((models / "blobs").glob(TEMP_PREFIX + "*"))
    assert orphans, "the kills left no partial file: the kill points missed the copy"
    for path in orphans:  # the dead writer's temp files, as found after long enough
        os.utime(path, (time.time() - STALE, time.time() - STALE))

    proc.start()
    try:
        assert not [p for p in orphans if p.exists()], "orphaned temp files were not cleaned"
        names = _verify_store(models)
        assert "registry.ollama.ai/library/gemma3/270m-text" in names
        tags = [m["name"] for m in httpx.get(proc.url("/api/tags"), timeout=60).json()["models"]]
        assert MODEL in tags
        r = httpx.post(
            proc.url("/api/generate"),
            json={"model": MODEL, "prompt": "Hi", "stream": False, "options": {"num_predict": 2}},
            timeout=300,
        )
        assert r.status_code == 200 and r.json()["done"] is True
    finally:
        assert proc.stop() == 0


# -- kill -9 during the store-changing routes -----------------------------------------------------


def _kill(proc: ServerProcess) -> None:
    proc.proc.send_signal(signal.SIGKILL)
    proc.proc.wait(30)
    proc._log.close()


def _in_background(fn) -> threading.Thread:
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    return t


def _tags(proc: ServerProcess) -> set[str]:
    return {m["name"] for m in httpx.get(proc.url("/api/tags"), timeout=60).json()["models"]}


def _manifest_names(models: Path) -> set[str]:
    """Display names of the manifests on disk (library models only, as these tests make)."""
    root = models / "manifests" / "registry.ollama.ai" / "library"
    return {f"{p.parent.name}:{p.name}" for p in root.rglob("*") if p.is_file()}


def test_kill_9_during_upload_create_and_delete(spawn_server):
    proc = spawn_server()
    models = proc.models
    data = np.random.default_rng(7).integers(0, 256, 48 << 20, dtype=np.uint8).tobytes()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    sent = threading.Event()

    # 1. blob upload: killed after 16 MiB of 48 arrived
    def upload() -> None:
        def chunks():
            for i in range(0, len(data), 1 << 20):
                if i == 16 << 20:
                    sent.set()
                    time.sleep(30)  # the server dies meanwhile
                yield data[i : i + (1 << 20)]

        with contextlib.suppress(httpx.HTTPError):
            httpx.post(proc.url(f"/api/blobs/{digest}"), content=chunks(), timeout=60)

    t = _in_background(upload)
    assert sent.wait(120)
    _wait_for_temp(models, 8 << 20, proc.proc)
    _kill(proc)
    proc.start()
    assert httpx.head(proc.url(f"/api/blobs/{digest}"), timeout=30).status_code == 404
    assert not (models / "blobs" / digest.replace(":", "-")).exists()
    t.join(60)

    # 2. create, killed a moment after it was sent; 3. delete of a complete model, likewise
    assert httpx.post(
        proc.url("/api/create"), json={"model": "victim", "from": MODEL, "stream": False}, timeout=120
    ).json() == {"status": "success"}
    for path, method, body in (
        ("/api/create", "POST", {"model": "crashy", "from": MODEL, "system": "Be brief.", "stream": False}),
        ("/api/delete", "DELETE", {"model": "victim"}),
    ):

        def send(path=path, method=method, body=body) -> None:
            with contextlib.suppress(httpx.HTTPError):
                httpx.request(method, proc.url(path), json=body, timeout=60)

        t = _in_background(send)
        time.sleep(0.02)
        _kill(proc)
        t.join(60)
        for orphan in (models / "blobs").glob(TEMP_PREFIX + "*"):  # as if found much later
            os.utime(orphan, (time.time() - STALE, time.time() - STALE))
        proc.start()

    # the store holds only complete models, each verifies, and what was half-written is gone
    assert not list((models / "blobs").glob(TEMP_PREFIX + "*")), "orphaned temp files were not cleaned"
    assert not list((models / "manifests").rglob(TEMP_PREFIX + "*"))
    _verify_store(models)
    assert _tags(proc) == _manifest_names(models)
    assert MODEL in _tags(proc)
    # the interrupted upload can simply be done again
    assert httpx.post(proc.url(f"/api/blobs/{digest}"), content=data, timeout=120).status_code == 201
    assert httpx.head(proc.url(f"/api/blobs/{digest}"), timeout=30).status_code == 200
    r = httpx.post(
        proc.url("/api/generate"),
        json={"model": MODEL, "prompt": "Hi", "stream": False, "options": {"num_predict": 2}},
        timeout=300,
    )
    assert r.status_code == 200 and r.json()["done"] is True
