"""The model store, laid out exactly as Ollama lays out $OLLAMA_MODELS (reference §4).

    manifests/<host>/<namespace>/<model>/<tag>   Docker schema-2 manifest JSON
    blobs/sha256-<hex>                           content-addressed layers and config blobs

Invariants: every file appears under its final name only complete (atomic.py); a manifest
is written only after every blob it names is present with the right size; a blob is
deleted only when no manifest names it and no create in progress has pinned it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
from collections import Counter
from collections.abc import AsyncIterable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from pollama.api.errors import APIError
from pollama.names import InvalidName, ModelName
from pollama.store import gojson
from pollama.store.atomic import TEMP_PREFIX, atomic_write_bytes, commit_temp, temp_path
from pollama.store.blobs import Blob, BlobWriter, write_async
from pollama.store.digest import blob_filename, digest_hex, is_digest
from pollama.store.manifest import MEDIA_CONFIG, Layer, Manifest, ManifestError
from pollama.store.model import LocalModel, load_layers

log = logging.getLogger(__name__)

PRUNE_AGE = 3600.0  # startup prune leaves unreferenced blobs younger than this (Ollama: 1 h)
STALE_TEMP_AGE = 15 * 60.0  # a temp file nobody wrote to for this long belongs to a dead writer
# An interrupted pull keeps its part files so a later pull resumes. Ollama deletes them at every
# start (and so never resumes across restarts); we keep them for a week, then reclaim the disk.
STALE_PARTIAL_AGE = 7 * 24 * 3600.0
_REFERENCE = re.compile(rb"sha256[:-]([0-9a-fA-F]{64})")
_UNSAFE_PART = re.compile(r"^\.{0,2}$|[/\\\x00]")


class Store:
    def __init__(self, root: Path, *, noprune: bool | None = None):
        if noprune is None:  # default: OLLAMA_NOPRUNE, as the rest of the settings
            from pollama.config import settings

            noprune = settings().noprune
        self.root = Path(root).expanduser()
        self.blobs = self.root / "blobs"
        self.manifests = self.root / "manifests"
        self.noprune = noprune
        self._lock = threading.RLock()  # manifest writes and blob deletion
        self._pins: Counter[str] = Counter()  # digests a create in progress relies on
        self._cache: dict[Path, tuple[tuple[int, int, int], LocalModel]] = {}

    # ----------------------------------------------------------------- layout and startup

    def ensure_layout(self) -> None:
        """Create the folders and apply Ollama's startup fixups (reference §4.1)."""
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.manifests.mkdir(parents=True, exist_ok=True)
        self._fix_blob_names()
        self._remove_stale_temps()
        self._remove_stale_partials()
        if not self.noprune:
            removed = self.prune(min_age=PRUNE_AGE)
            if removed:
                log.info("pruned %d unreferenced blob(s)", removed)
        self._remove_empty_dirs(self.manifests, keep_root=True)

    def _fix_blob_names(self) -> None:
        """Very old Ollama named blobs `sha256:<hex>`; today's name is `sha256-<hex>`."""
        for path in self.blobs.glob("sha256:*"):
            if not is_digest(path.name):
                continue
            dest = self.blobs / blob_filename(path.name)
            try:
                if dest.exists():
                    path.unlink()
                else:
                    os.replace(path, dest)
            except OSError as e:
                log.warning("could not rename old blob %s: %s", path, e)

    def _remove_stale_temps(self) -> None:
        """Temp files of writers that died: ours (TEMP_PREFIX) and Ollama's `sha256-<random>`.

        Download part files (`sha256-<hex>-partial*`) are kept so a pull can resume.
        """
        cutoff = time.time() - STALE_TEMP_AGE
        candidates = list(self.blobs.iterdir()) + list(self.manifests.rglob(f"{TEMP_PREFIX}*"))
        for path in candidates:
            name = path.name
            if name.startswith(TEMP_PREFIX) and path.is_dir():  # a create's staging folder
                with contextlib.suppress(OSError):
                    if path.stat().st_mtime < cutoff:
                        shutil.rmtree(path)
                continue
            if is_digest(name) or "-partial" in name or not path.is_file():
                continue
            if not (name.startswith(TEMP_PREFIX) or name.startswith("sha256-")):
                continue
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    log.info("removed stale temp file %s", path)

    def _remove_stale_partials(self) -> None:
        """Drop the part files of a download nobody touched for STALE_PARTIAL_AGE (all of them)."""
        newest: dict[str, float] = {}
        files: dict[str, list[Path]] = {}
        for path in self.blobs.glob("sha256-*-partial*"):
            key = path.name.split("-partial", 1)[0]
            with contextlib.suppress(OSError):
                newest[key] = max(newest.get(key, 0.0), path.stat().st_mtime)
                files.setdefault(key, []).append(path)
        cutoff = time.time() - STALE_PARTIAL_AGE
        for key, paths in files.items():
            if newest[key] < cutoff:
                for path in paths:
                    with contextlib.suppress(OSError):
                        path.unlink()
                log.info("removed the parts of a download abandoned over a week ago: %s", key)

    def _remove_empty_dirs(self, top: Path, keep_root: bool) -> None:
        for dirpath, _dirs, _files in os.walk(top, topdown=False):
            if keep_root and Path(dirpath) == top:
                continue
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)  # fails (and is ignored) when not empty

    # ----------------------------------------------------------------- blobs

    def blob_path(self, digest: str) -> Path:
        """`blobs/sha256-<hex>` for `sha256:<hex>` or `sha256-<hex>`; APIError(400) otherwise."""
        return self.blobs / blob_filename(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def blob_size(self, digest: str) -> int | None:
        try:
            return self.blob_path(digest).stat().st_size
        except FileNotFoundError:
            return None

    def _expected(self, expected_digest: str | None) -> tuple[str | None, str | None]:
        if expected_digest is None:
            return None, None
        return digest_hex(expected_digest), expected_digest

    def write_blob(self, chunks: Iterable[bytes] | bytes, expected_digest: str | None = None) -> Blob:
        """Store a byte stream as a blob. With `expected_digest`, a mismatch raises
        APIError(400, 'digest mismatch, ...') and leaves nothing behind."""
        hex_, text = self._expected(expected_digest)
        self.blobs.mkdir(parents=True, exist_ok=True)
        writer = BlobWriter(self.blobs)
        try:
            for chunk in [chunks] if isinstance(chunks, bytes | bytearray) else chunks:
                writer.write(chunk)
        except BaseException:
            writer.abort()
            raise
        return writer.commit(hex_, text)

    async def write_blob_async(
        self, chunks: AsyncIterable[bytes], expected_digest: str | None = None
    ) -> Blob:
        """write_blob for an async stream (an HTTP request body); disk work runs in a thread."""
        hex_, text = self._expected(expected_digest)
        self.blobs.mkdir(parents=True, exist_ok=True)
        writer = BlobWriter(self.blobs)
        try:
            await write_async(writer, chunks)
        except BaseException:
            writer.abort()
            raise
        return await asyncio.to_thread(writer.commit, hex_, text)

    def import_file(self, path: Path, expected_digest: str | None = None) -> Blob:
        """Copy a file into the store (hashing as it copies)."""

        def read() -> Iterator[bytes]:
            with open(path, "rb") as f:
                while block := f.read(1 << 20):
                    yield block

        return self.write_blob(read(), expected_digest)

    def adopt_temp(self, tmp: Path, digest: str) -> Blob:
        """Move a complete, fsynced, already verified temp file in blobs/ to its blob name."""
        dest = self.blob_path(digest)
        if tmp.parent.resolve() != self.blobs.resolve():
            raise ValueError("adopt_temp needs a temp file inside blobs/")
        size = tmp.stat().st_size
        if dest.exists():
            tmp.unlink()
            os.utime(dest)
            return Blob("sha256:" + digest_hex(digest), size, dest, created=False)
        commit_temp(tmp, dest)
        return Blob("sha256:" + digest_hex(digest), size, dest, created=True)

    def new_temp(self) -> Path:
        """A fresh temp path in blobs/ for producers that write files themselves (bundled, convert)."""
        self.blobs.mkdir(parents=True, exist_ok=True)
        return temp_path(self.blobs)

    def existing_layer(self, digest: str, media_type: str, from_: str = "", name: str = "") -> Layer:
        """A layer for a blob already in the store (size from disk). APIError(400) when missing."""
        size = self.blob_size(digest)
        if size is None:
            raise APIError(400, f'blob "sha256:{digest_hex(digest)}" not found')
        os.utime(self.blob_path(digest))  # keep it clear of the startup prune window
        return Layer(media_type, "sha256:" + digest_hex(digest), size, from_, name)

    @contextlib.contextmanager
    def pinned(self, digests: Iterable[str]) -> Iterator[None]:
        """Keep these blobs from being pruned while a create that needs them is running."""
        keys = ["sha256:" + digest_hex(d) for d in digests]
        with self._lock:
            self._pins.update(keys)
        try:
            yield
        finally:
            with self._lock:
                self._pins.subtract(keys)
                self._pins += Counter()  # drop zero counts

    def pin(self, digest: str) -> None:
        """Pin one more blob inside an active `pinned()` block's lifetime (released by unpin)."""
        with self._lock:
            self._pins["sha256:" + digest_hex(digest)] += 1

    def unpin(self, digest: str) -> None:
        with self._lock:
            self._pins["sha256:" + digest_hex(digest)] -= 1
            self._pins += Counter()

    # ----------------------------------------------------------------- manifests

    def manifest_path(self, name: ModelName) -> Path:
        """Where `name`'s manifest lives; refuses anything that would leave manifests/."""
        parts = (name.host, name.namespace, name.model, name.tag)
        if any(not isinstance(p, str) or _UNSAFE_PART.search(p) for p in parts):
            raise APIError(400, "invalid model name")
        path = self.manifests.joinpath(*parts)
        root = os.path.realpath(self.manifests)
        if os.path.commonpath([root, os.path.realpath(path)]) != root:
            raise APIError(400, "invalid model name")
        return path

    def _manifest_files(self) -> Iterator[tuple[ModelName, Path]]:
        if not self.manifests.is_dir():
            return
        for path in self.manifests.glob("*/*/*/*"):
            rel = path.relative_to(self.manifests).parts
            if path.name.startswith(TEMP_PREFIX) or not path.is_file():
                continue
            try:
                name = ModelName.parse(f"{rel[0]}/{rel[1]}/{rel[2]}:{rel[3]}")
            except InvalidName:
                log.warning("skipping manifest with an invalid name: %s", path)
                continue
            yield name, path

    def existing_name(self, name: ModelName) -> ModelName:
        """The installed name that matches `name` ignoring case (Ollama's getExistingName)."""
        if self.manifest_path(name).is_file():
            return name
        for found, _ in self._manifest_files():
            if found.key == name.key:
                return found
        return name

    def resolve(self, name: ModelName) -> LocalModel | None:
        """The installed model called `name` (case-insensitive), or None."""
        name = self.existing_name(name)
        path = self.manifest_path(name)
        try:
            return self._load(name, path)
        except FileNotFoundError:
            return None
        except (ManifestError, OSError) as e:
            log.warning("bad manifest %s: %s", path, e)
            return None

    def list(self) -> list[LocalModel]:
        """Every installed model, newest first."""
        models = []
        for name, path in self._manifest_files():
            try:
                models.append(self._load(name, path))
            except (ManifestError, OSError) as e:
                log.warning("bad manifest %s: %s", path, e)
        live = {m.manifest_path for m in models}
        for stale in [p for p in self._cache if p not in live]:
            self._cache.pop(stale, None)
        models.sort(key=lambda m: m.modified_at, reverse=True)
        return models

    def _load(self, name: ModelName, path: Path) -> LocalModel:
        st = path.stat()
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        cached = self._cache.get(path)
        if cached and cached[0] == key and cached[1].name == name:
            return cached[1]
        data = path.read_bytes()
        manifest = Manifest.parse(data)
        config = self._read_config(manifest)
        model = LocalModel(
            name=name,
            digest=hashlib.sha256(data).hexdigest(),
            modified_at=datetime.fromtimestamp(st.st_mtime_ns / 1e9).astimezone(),
            size=manifest.size,
            config=config,
            manifest=manifest,
            manifest_path=path,
        )
        try:
            load_layers(model, self.blob_path)
        except OSError as e:
            raise ManifestError(f"missing layer: {e}") from e
        self._cache[path] = (key, model)
        return model

    def _read_config(self, manifest: Manifest) -> dict[str, Any]:
        if not manifest.config.digest:
            return {}
        try:
            config = json.loads(self.blob_path(manifest.config.digest).read_bytes())
        except FileNotFoundError as e:
            raise ManifestError(f"config blob {manifest.config.digest} is missing") from e
        except ValueError as e:
            raise ManifestError(f"config blob is not JSON: {e}") from e
        return config if isinstance(config, dict) else {}

    def write_manifest(self, name: ModelName, config: dict[str, Any], layers: list[Layer]) -> LocalModel:
        """Write the config blob and the manifest for `name`, replacing any model of that name
        (matched ignoring case). Every layer's blob must already be in the store with its size.
        Layers the replaced manifest alone used are removed unless noprune."""
        with self._lock:
            for layer in layers:
                size = self.blob_size(layer.digest)
                if size is None:
                    raise APIError(500, f"layer {layer.digest} is missing from the store")
                if size != layer.size:
                    raise APIError(500, f"layer {layer.digest} has size {size}, manifest says {layer.size}")
            config_blob = self.write_blob(gojson.dumps(config, newline=True))
            manifest = Manifest(config=config_blob.layer(MEDIA_CONFIG), layers=list(layers))
            name = self.existing_name(name)
            path = self.manifest_path(name)
            old = self._read_references(path)
            atomic_write_bytes(path, manifest.to_bytes())
            if old and not self.noprune:
                self._remove_unreferenced(old - manifest.digests())
        model = self.resolve(name)
        assert model is not None
        return model

    def write_manifest_bytes(self, name: ModelName, data: bytes) -> None:
        """Store a manifest exactly as received (a registry pull: its digest is of these bytes)."""
        manifest = Manifest.parse(data)
        with self._lock:
            for layer in manifest.all_layers():
                if self.blob_size(layer.digest) != layer.size:
                    raise APIError(500, f"layer {layer.digest} is missing from the store")
            name = self.existing_name(name)
            path = self.manifest_path(name)
            old = self._read_references(path)
            atomic_write_bytes(path, data)
            if old and not self.noprune:
                self._remove_unreferenced(old - manifest.digests())

    def delete(self, name: ModelName) -> bool:
        """Remove a model; False when it is not installed. Its now-unused blobs go too."""
        with self._lock:
            name = self.existing_name(name)
            path = self.manifest_path(name)
            refs = self._read_references(path)
            try:
                path.unlink()
            except FileNotFoundError:
                return False
            self._cache.pop(path, None)
            self._remove_empty_parents(path.parent)
            if not self.noprune:
                self._remove_unreferenced(refs)
            return True

    def copy(self, src: ModelName, dst: ModelName) -> bool:
        """Copy the manifest file (blobs are shared); False when `src` is not installed."""
        with self._lock:
            src_path = self.manifest_path(self.existing_name(src))
            try:
                data = src_path.read_bytes()
            except FileNotFoundError:
                return False
            dst_path = self.manifest_path(self.existing_name(dst))
            if dst_path != src_path:
                old = self._read_references(dst_path)
                atomic_write_bytes(dst_path, data)
                if old and not self.noprune:
                    self._remove_unreferenced(old - self._references(data))
            return True

    def _remove_empty_parents(self, folder: Path) -> None:
        root = self.manifests.resolve()
        while folder.resolve() != root and folder.resolve().is_relative_to(root):
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    # ----------------------------------------------------------------- garbage collection

    @staticmethod
    def _references(data: bytes) -> set[str]:
        """Every digest a manifest names. A regex over the raw bytes rather than a parse, so a
        manifest in a format pollama does not read (a manifest list) still protects its blobs."""
        return {"sha256:" + m.group(1).decode().lower() for m in _REFERENCE.finditer(data)}

    def _read_references(self, path: Path) -> set[str]:
        try:
            return self._references(path.read_bytes())
        except FileNotFoundError:
            return set()

    def referenced(self) -> set[str]:
        refs: set[str] = set()
        if self.manifests.is_dir():
            for path in self.manifests.rglob("*"):
                if path.is_file() and not path.name.startswith(TEMP_PREFIX):
                    with contextlib.suppress(OSError):
                        refs |= self._references(path.read_bytes())
        return refs

    def _remove_unreferenced(self, candidates: Iterable[str]) -> int:
        with self._lock:
            keep = self.referenced() | set(self._pins)
            removed = 0
            for digest in set(candidates) - keep:
                with contextlib.suppress(FileNotFoundError):
                    self.blob_path(digest).unlink()
                    removed += 1
            return removed

    def discard(self, digests: Iterable[str]) -> int:
        """Remove blobs a failed create wrote, unless a manifest or another create uses them."""
        return self._remove_unreferenced("sha256:" + digest_hex(d) for d in digests)

    def prune(self, min_age: float = 0.0) -> int:
        """Remove blobs that no manifest names and no create has pinned, if older than min_age s."""
        with self._lock:
            keep = self.referenced() | set(self._pins)
            cutoff = time.time() - min_age
            removed = 0
            for path in self.blobs.glob("sha256-*"):
                if not is_digest(path.name) or "sha256:" + path.name[7:].lower() in keep:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    if path.stat().st_mtime <= cutoff:
                        path.unlink()
                        removed += 1
            return removed
