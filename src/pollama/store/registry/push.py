"""Push a model: each blob the registry lacks (HEAD, mount, chunked PATCH, PUT), then the manifest.

The statuses are Ollama's PushModel's: `retrieving manifest` (or `couldn't retrieve
manifest` and an error), `pushing <12 hex>` with total/completed per layer, `pushing
manifest`, `success`. The manifest is sent as the exact bytes of the local file, so the
model pulled back has the same digest.

A blob the repository already has is skipped. A blob that another repository of the same
registry has (the layer's `from`, or a local model of that registry that holds it) is
mounted rather than uploaded. The rest is uploaded in order in parts of a PATCH each, then
committed with `PUT ?digest=`. A failed upload starts over, up to MAX_RETRIES times.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from pollama.names import InvalidName, ModelName
from pollama.store import Store
from pollama.store.manifest import Layer, Manifest
from pollama.store.registry.client import NotFound, Registry, RegistryError, Retryable, Unreachable
from pollama.store.registry.download import MAX_RETRIES, follow, part_sizes
from pollama.store.registry.pull import insecure_protocol

READ_BLOCK = 1 << 20


class BlobUpload:
    def __init__(self, registry: Registry, path: Path, layer: Layer, mount_from: str | None):
        self.registry = registry
        self.path = path
        self.layer = layer
        self.mount_from = mount_from
        self.completed = 0

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                await self._attempt()
                return
            except Retryable as exc:
                if isinstance(exc, Unreachable) and not self.registry.reached:
                    raise  # it never answered: say so now rather than after a minute of retries
                failures += 1
                if failures >= MAX_RETRIES:
                    raise RegistryError(f"max retries exceeded: {exc}") from exc
                self.completed = 0
                await asyncio.sleep(2.0 ** (failures - 1))

    async def _attempt(self) -> None:
        reg, digest, size = self.registry, self.layer.digest, self.layer.size
        try:
            async with reg.open("HEAD", reg.url("blobs", digest)):
                self.completed = size
                return  # the repository has it
        except NotFound:
            pass
        params = {"mount": digest, "from": self.mount_from} if self.mount_from else None
        async with reg.open("POST", reg.url("blobs", "uploads", ""), params=params) as r:
            if r.status_code == 201:
                self.completed = size  # mounted from the other repository: nothing to send
                return
            location = r.headers.get("docker-upload-location") or r.headers.get("location")
            if not location:
                raise RegistryError(f"{r.status_code}: the registry gave no upload location")
            location = urljoin(str(r.url), location)
        for offset, length in part_sizes(size):
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + length - 1}",
                "Content-Length": str(length),
            }
            body = self._reader(offset, length)
            async with reg.open("PATCH", location, headers=headers, body=body, follow_redirects=False) as r:
                next_location = r.headers.get("location")
                if r.status_code >= 300 or not next_location:
                    raise RegistryError(f"{r.status_code}: unexpected answer to an upload part")
                location = urljoin(str(r.url), next_location)
        headers = {"Content-Length": "0"}
        async with reg.open("PUT", location, params={"digest": digest}, headers=headers):
            self.completed = size

    def _reader(self, offset: int, length: int):
        """A fresh async stream of the part for each attempt (the 401 retry replays it)."""

        async def chunks() -> AsyncIterator[bytes]:
            self.completed = offset
            with open(self.path, "rb") as f:
                f.seek(offset)
                left = length
                while left:
                    block = await asyncio.to_thread(f.read, min(READ_BLOCK, left))
                    if not block:
                        raise RegistryError(f"{self.path} is shorter than the manifest says")
                    left -= len(block)
                    self.completed += len(block)
                    yield block

        return chunks


def mount_source(name: ModelName, layer: Layer, local: list[tuple[ModelName, set[str]]]) -> str | None:
    """A repository of the same registry that has the blob: the layer's `from`, or a local model's."""
    if layer.from_:
        try:
            source = ModelName.parse(layer.from_)
        except InvalidName:
            source = None
        if source and source.host.lower() == name.host.lower() and source.repository != name.repository:
            return source.repository
    for other, digests in local:
        same_host = other.host.lower() == name.host.lower()
        if same_host and other.repository.lower() != name.repository.lower() and layer.digest in digests:
            return other.repository
    return None


async def push_model(
    store: Store, name: ModelName, *, insecure: bool, home: Path
) -> AsyncIterator[dict[str, Any]]:
    """Push the local model `name` to its registry, yielding progress objects."""
    yield {"status": "retrieving manifest"}
    if name.scheme == "http" and not insecure:
        raise insecure_protocol()
    model = store.resolve(name)
    data = None
    if model is not None:
        try:
            data = model.manifest_path.read_bytes()
        except FileNotFoundError:
            pass
    if model is None or data is None:
        yield {"status": "couldn't retrieve manifest"}
        raise RegistryError(f"open {store.manifest_path(name)}: no such file or directory")
    manifest = Manifest.parse(data)
    target = ModelName(model.name.host, model.name.namespace, model.name.model, model.name.tag, name.scheme)
    local = await asyncio.to_thread(lambda: [(m.name, m.manifest.digests()) for m in store.list()])

    async with Registry(target, insecure, home) as registry:
        with store.pinned(manifest.digests()):
            for layer in manifest.all_layers():
                upload = BlobUpload(
                    registry, store.blob_path(layer.digest), layer, mount_source(target, layer, local)
                )
                task = asyncio.create_task(upload.run(), name=f"upload {layer.digest[7:19]}")
                base = {
                    "status": f"pushing {layer.digest[7:19]}",
                    "digest": layer.digest,
                    "total": layer.size,
                }
                try:
                    async for progress in follow(task, lambda u=upload: u.completed, base):
                        yield progress
                finally:
                    if not task.done():
                        task.cancel()
                        await asyncio.wait({task})

        yield {"status": "pushing manifest"}
        url = registry.url("manifests", target.tag)
        async with registry.open("PUT", url, headers={"Content-Type": manifest.media_type}, body=data):
            pass
    yield {"status": "success"}
