"""Crash consistency: kill -9 the server while it writes to the store, restart, and check
that the store lists only complete models, every manifest's blobs exist and verify, and
the orphans of the dead writer are cleaned.

The writes available today are the first-start registration of the bundled models (a
250 MB blob copy, a conversion, manifests). Kills during create, blob upload, pull and
delete belong here too once those routes exist.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import MODEL
from tests.serverproc import ServerProcess

TEMP_PREFIX = ".pollama-tmp-"
STALE = 16 * 60  # older than the store's STALE_TEMP_AGE: what a restart may delete


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
    # two kill points: early in the 250 MB copy, and late in it
    for min_bytes in (1 << 20, 160 << 20):
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
