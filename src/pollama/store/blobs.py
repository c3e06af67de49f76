"""Streaming a blob into the store: hash while writing a temp file in blobs/, verify, rename."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from pollama.api.errors import APIError
from pollama.store.atomic import commit_temp, temp_path
from pollama.store.manifest import Layer

_BATCH = 4 * 1024 * 1024  # async writes go to a thread in batches of this size


@dataclass(frozen=True)
class Blob:
    digest: str  # "sha256:<hex>"
    size: int
    path: Path
    created: bool  # False: the store already had it

    def layer(self, media_type: str, from_: str = "", name: str = "") -> Layer:
        return Layer(media_type, self.digest, self.size, from_, name)

    @property
    def status(self) -> str:
        """Ollama's create progress line for this layer."""
        return f"{'creating new' if self.created else 'using existing'} layer {self.digest}"


def digest_mismatch(expected: str, got: str) -> APIError:
    return APIError(400, f'digest mismatch, expected "{expected}", got "{got}"')


class BlobWriter:
    """One temp file in blobs/. write() any number of times, then commit() or abort()."""

    def __init__(self, blobs_dir: Path):
        self._dir = blobs_dir
        self._tmp = temp_path(blobs_dir)
        self._file = open(self._tmp, "xb")  # noqa: SIM115 - closed by commit/abort
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        self._hash.update(chunk)
        self._file.write(chunk)
        self.size += len(chunk)

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()

    def commit(self, expected_hex: str | None = None, expected_text: str | None = None) -> Blob:
        """Verify and move into place. On mismatch nothing is kept and APIError(400) is raised."""
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            got = self._hash.hexdigest()
            if expected_hex is not None and got != expected_hex:
                raise digest_mismatch(expected_text or f"sha256:{expected_hex}", f"sha256:{got}")
            dest = self._dir / f"sha256-{got}"
            if dest.exists():  # same bytes already stored: keep the old file, refresh its age
                os.utime(dest)
                self._tmp.unlink()
                return Blob(f"sha256:{got}", self.size, dest, created=False)
            commit_temp(self._tmp, dest)
            return Blob(f"sha256:{got}", self.size, dest, created=True)
        except BaseException:
            self.abort()
            raise


async def write_async(writer: BlobWriter, chunks) -> None:
    """Feed an async iterable into `writer`, doing the disk work off the event loop."""
    pending = bytearray()
    async for chunk in chunks:
        pending += chunk
        if len(pending) >= _BATCH:
            data, pending = bytes(pending), bytearray()
            await asyncio.to_thread(writer.write, data)
    if pending:
        await asyncio.to_thread(writer.write, bytes(pending))
