"""Blob downloads: parallel ranged parts, resumable, shared, verified before they get their name.

A blob in transit is `blobs/sha256-<hex>-partial` (a sparse file of the full size) plus one
`sha256-<hex>-partial-<N>` JSON file per part, `{"N","Offset","Size","Completed"}`, the
same files Ollama writes, so either can resume the other's download. Parts are fetched with
`Range` requests in parallel; each saves its progress as it goes, so a cancelled pull, a
dropped connection or a killed server resumes where the data stops. A part that receives
nothing for `stall_timeout` seconds is retried; a part fails only after MAX_RETRIES
attempts in a row without a single byte of progress, with backoff 1, 2, 4... s between them.

When every part is complete the file is hashed; only a file whose sha256 is the digest is
renamed to `sha256-<hex>`. A mismatch deletes the partial files and fails the pull.

One download runs per blob per process: every pull that needs the blob waits on it, and
it is cancelled (its progress saved) when the last of them goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from pollama.store import Store
from pollama.store.atomic import temp_path
from pollama.store.digest import digest_hex
from pollama.store.manifest import Layer
from pollama.store.registry.client import NotFound, Registry, RegistryError, Retryable, Unreachable

log = logging.getLogger("pollama.registry")

NUM_PARTS = 16  # at most this many parts, all fetched at once (Ollama: 16)
MIN_PART = 8 << 20  # Ollama uses 100 MB; smaller parts spread mid-sized blobs over more connections
MAX_PART = 1000 << 20
MAX_RETRIES = 6
WRITE_BATCH = 1 << 20  # bytes gathered before a write to disk
SAVE_EVERY = 0.5  # seconds between saves of a part's progress
PROGRESS_EVERY = 0.06  # Ollama reports progress every 60 ms
HEARTBEAT = 1.0  # and we repeat the last numbers at least this often, even when nothing moved


def part_sizes(total: int) -> list[tuple[int, int]]:
    """(offset, size) of each part: total/16, clamped to [MIN_PART, MAX_PART]."""
    size = min(max(total // NUM_PARTS, MIN_PART), MAX_PART)
    return [(offset, min(size, total - offset)) for offset in range(0, total, size)]


def digest_mismatch(want: str, got: str) -> RegistryError:
    return RegistryError(f"digest mismatch, file must be downloaded again: want {want}, got {got}")


@dataclass
class Part:
    n: int
    offset: int
    size: int
    completed: int = 0

    def to_json(self) -> bytes:
        return json.dumps(
            {"N": self.n, "Offset": self.offset, "Size": self.size, "Completed": self.completed}
        ).encode()


class Stalled(Retryable):
    pass


class BlobDownload:
    """The transfer of one blob into the store."""

    def __init__(self, store: Store, layer: Layer, registry: Registry, stall_timeout: float):
        self.store = store
        self.layer = layer
        self.registry = registry  # owned: closed when the download ends
        self.stall_timeout = stall_timeout
        self.final = store.blob_path(layer.digest)
        self.data = self.final.with_name(self.final.name + "-partial")
        self.parts: list[Part] = []
        self.waiters = 0
        self.task: asyncio.Task[None] | None = None

    @property
    def completed(self) -> int:
        return sum(p.completed for p in self.parts)

    def _part_path(self, n: int) -> Path:
        return self.data.with_name(f"{self.data.name}-{n}")

    def _part_files(self) -> list[Path]:
        return sorted(self.data.parent.glob(self.data.name + "-*"))

    # -- part state -----------------------------------------------------------------------

    def _load_parts(self) -> list[Part] | None:
        """The saved parts, when they describe this blob and its data file is there."""
        paths = self._part_files()
        if not paths:
            return None
        try:
            if self.data.stat().st_size != self.layer.size:
                return None
            parts = []
            for path in paths:
                obj = json.loads(path.read_bytes())
                parts.append(Part(int(obj["N"]), int(obj["Offset"]), int(obj["Size"]), int(obj["Completed"])))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        parts.sort(key=lambda p: p.n)
        offset = 0
        for i, part in enumerate(parts):
            if part.n != i or part.offset != offset or part.size <= 0 or not 0 <= part.completed <= part.size:
                return None
            offset += part.size
        return parts if offset == self.layer.size else None

    def _save(self, part: Part) -> None:
        """Write a part's state (temp file and rename: a crash leaves the old or the new state)."""
        tmp = temp_path(self.data.parent)  # a crash leaves it to the store's stale-temp cleanup
        tmp.write_bytes(part.to_json())
        os.replace(tmp, self._part_path(part.n))

    def _remove_partial(self) -> None:
        for path in [self.data, *self._part_files()]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _prepare(self) -> list[Part]:
        parts = self._load_parts()
        if parts is not None:
            done = sum(p.completed for p in parts)
            log.info(
                "resuming download of %s at %d of %d bytes", self.layer.digest[7:19], done, self.layer.size
            )
            return parts
        self._remove_partial()
        with open(self.data, "wb") as f:
            f.truncate(self.layer.size)  # sparse: parts land at their offsets
        parts = [Part(n, offset, size) for n, (offset, size) in enumerate(part_sizes(self.layer.size))]
        for part in parts:
            self._save(part)
        return parts

    # -- transfer ---------------------------------------------------------------------------

    async def run(self, previous: asyncio.Task[None] | None) -> None:
        try:
            if previous is not None:  # a cancelled download of this blob may still be saving its parts
                await asyncio.wait({previous})
            self.parts = await asyncio.to_thread(self._prepare)
            fd = os.open(self.data, os.O_RDWR)
            try:
                try:
                    async with asyncio.TaskGroup() as group:
                        for part in self.parts:
                            if part.completed < part.size:
                                group.create_task(self._run_part(part, fd))
                except BaseExceptionGroup as eg:
                    first = eg.exceptions[0]
                    if isinstance(first, NotFound):  # the registry has no such blob: nothing to resume
                        await asyncio.to_thread(self._remove_partial)
                    if isinstance(first, RegistryError):
                        raise first from None
                    raise RegistryError(f"download of {self.layer.digest}: {first}") from first
                finishing = asyncio.ensure_future(asyncio.to_thread(self._finish, fd))
                try:
                    await asyncio.shield(finishing)
                finally:
                    if not finishing.done():  # cancelled while hashing: let the rename finish first
                        await asyncio.wait({finishing})
            finally:
                os.close(fd)
        finally:
            await self.registry.aclose()

    async def _run_part(self, part: Part, fd: int) -> None:
        failures = 0
        while part.completed < part.size:
            before = part.completed
            try:
                await self._fetch(part, fd)
            except Retryable as exc:
                if isinstance(exc, Unreachable) and not self.registry.reached:
                    raise
                short = self.layer.digest[7:19]
                if part.completed > before:
                    failures = 0  # it moved: resume at once
                    log.info("%s part %d: %s; resuming at byte %d", short, part.n, exc, part.completed)
                    continue
                failures += 1
                if failures >= MAX_RETRIES:
                    raise RegistryError(f"max retries exceeded: {exc}") from exc
                delay = 2.0 ** (failures - 1)
                log.info("%s part %d: %s; retrying in %gs", short, part.n, exc, delay)
                await asyncio.sleep(delay)

    async def _fetch(self, part: Part, fd: int) -> None:
        """One ranged GET for the rest of `part`, written at its offset as it arrives."""
        start = part.offset + part.completed
        end = part.offset + part.size - 1
        pending = bytearray()
        position = start  # where the next write goes
        writing: asyncio.Future[None] | None = None  # the write in flight (one at a time per part)
        last_save = time.monotonic()

        def write(data: bytes, offset: int, save: bool) -> None:
            os.pwrite(fd, data, offset)
            part.completed = offset + len(data) - part.offset
            if save:
                self._save(part)

        url = self.registry.url("blobs", self.layer.digest)
        headers = {"Range": f"bytes={start}-{end}", "Accept-Encoding": "identity"}
        try:
            async with self.registry.open("GET", url, headers=headers, read_timeout=self.stall_timeout) as r:
                skip = start if r.status_code == 200 else 0  # a registry that ignores Range sends it all
                if r.status_code == 206 and not r.headers.get("content-range", "").startswith(
                    f"bytes {start}-"
                ):
                    raise Retryable(
                        f"the registry answered range {r.headers.get('content-range')!r} for {start}-{end}"
                    )
                remaining = end - start + 1
                async for chunk in r.aiter_raw():
                    if skip:
                        cut = min(skip, len(chunk))
                        chunk, skip = chunk[cut:], skip - cut
                    chunk = chunk[:remaining]
                    pending += chunk
                    remaining -= len(chunk)
                    if len(pending) >= WRITE_BATCH or (remaining == 0 and pending):
                        if writing is not None:
                            await asyncio.shield(writing)
                        now = time.monotonic()
                        save = now - last_save >= SAVE_EVERY
                        if save:
                            last_save = now
                        data, pending = bytes(pending), bytearray()
                        writing = asyncio.ensure_future(asyncio.to_thread(write, data, position, save))
                        position += len(data)
                    if remaining == 0:
                        break
        except httpx.ReadTimeout as exc:
            raise Stalled(f"part stalled: no data for {self.stall_timeout:g}s") from exc
        except httpx.TransportError as exc:
            raise Retryable(f"download interrupted: {exc or type(exc).__name__}") from exc
        finally:
            # Keep every byte that arrived, and record it on disk, even when cancelled.
            if writing is not None:
                await asyncio.shield(writing)
            write(bytes(pending), position, save=True)
        if part.completed < part.size:
            raise Retryable("unexpected EOF")

    def _finish(self, fd: int) -> None:
        """Make the data durable, check its sha256, and only then give it its blob name."""
        os.fsync(fd)
        digest = hashlib.sha256()
        with open(self.data, "rb") as f:
            while block := f.read(4 << 20):
                digest.update(block)
        got = "sha256:" + digest.hexdigest()
        if got != "sha256:" + digest_hex(self.layer.digest):
            self._remove_partial()
            raise digest_mismatch(self.layer.digest, got)
        self.store.adopt_temp(self.data, self.layer.digest)
        for path in self._part_files():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


async def follow(
    task: asyncio.Task[Any], completed: Callable[[], int], base: dict[str, Any]
) -> AsyncIterator[dict[str, Any]]:
    """Progress objects for a running transfer: on change (every 60 ms at most), at least every
    second, and a last one at 100 % when it succeeds. The task's error is raised here."""
    last, last_time = -1, 0.0
    while True:
        done, _ = await asyncio.wait({task}, timeout=PROGRESS_EVERY)
        if done:
            task.result()
            yield {**base, "completed": base["total"]}
            return
        now, value = time.monotonic(), completed()
        if value != last or now - last_time >= HEARTBEAT:
            last, last_time = value, now
            yield {**base, "completed": value}


class Downloads:
    """Every download in progress in this process, one per blob file."""

    def __init__(self) -> None:
        self._active: dict[Path, BlobDownload] = {}

    async def fetch(
        self, store: Store, registry: Registry, layer: Layer, stall_timeout: float
    ) -> AsyncIterator[dict[str, Any]]:
        """Get `layer` into the store, yielding Ollama's progress objects while it comes."""
        status = f"pulling {layer.digest[7:19]}"
        size = store.blob_size(layer.digest)
        if size is not None:
            if size != layer.size:
                raise RegistryError(
                    f"blob {layer.digest} in the store has {size} bytes, the manifest says {layer.size}"
                )
            yield {"status": status, "digest": layer.digest, "total": size, "completed": size}
            return
        download = self._join(store, registry, layer, stall_timeout)
        download.waiters += 1
        try:
            assert download.task is not None
            base = {"status": status, "digest": layer.digest, "total": layer.size}
            async for progress in follow(download.task, lambda: download.completed, base):
                yield progress
        finally:
            download.waiters -= 1
            if download.waiters == 0 and download.task is not None and not download.task.done():
                download.task.cancel()  # nobody wants it any more: stop, keeping the parts on disk

    def _join(self, store: Store, registry: Registry, layer: Layer, stall_timeout: float) -> BlobDownload:
        path = store.blob_path(layer.digest)
        current = self._active.get(path)
        if current and current.task and not current.task.done() and not current.task.cancelling():
            return current  # share it (a cancelled one is left to save its state: start anew after it)
        download = BlobDownload(store, layer, registry.clone(), stall_timeout)
        previous = current.task if current is not None and current.task and not current.task.done() else None
        download.task = asyncio.create_task(download.run(previous), name=f"download {layer.digest[7:19]}")
        download.task.add_done_callback(lambda t: self._ended(path, download, t))
        self._active[path] = download
        return download

    def _ended(self, path: Path, download: BlobDownload, task: asyncio.Task[None]) -> None:
        if self._active.get(path) is download:
            del self._active[path]
        if not task.cancelled() and task.exception() is not None and download.waiters == 0:
            log.info("download of %s ended: %s", download.layer.digest[7:19], task.exception())


DOWNLOADS = Downloads()
