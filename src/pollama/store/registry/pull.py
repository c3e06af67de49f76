"""Pull a model: manifest, then each layer (shared, resumable downloads), then the manifest file.

The statuses are Ollama's PullModel's: `pulling manifest`, `pulling <12 hex>` with
total/completed per layer, `verifying sha256 digest`, `writing manifest`,
`removing unused layers` (when the replaced manifest leaves layers unused), `success`.
Every blob is verified as its download completes (download.py), before it gets its name;
the manifest is written last, so a failed pull never leaves a model that is half there.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pollama.names import ModelName
from pollama.store import Store
from pollama.store.manifest import Manifest, ManifestError
from pollama.store.registry.client import Registry, RegistryError
from pollama.store.registry.download import DOWNLOADS

STALL_TIMEOUT = 30.0  # Ollama's: a part with no data for this long is retried


def insecure_protocol() -> RegistryError:
    return RegistryError("insecure protocol http")


async def pull_model(
    store: Store, name: ModelName, *, insecure: bool, home: Path, stall_timeout: float = STALL_TIMEOUT
) -> AsyncIterator[dict[str, Any]]:
    """Pull `name` into `store`, yielding progress objects; RegistryError on failure."""
    if name.scheme == "http" and not insecure:
        raise insecure_protocol()
    old = store.resolve(name)
    old_digests = old.manifest.digests() if old else set()

    yield {"status": "pulling manifest"}
    async with Registry(name, insecure, home) as registry:
        try:
            data = await registry.manifest(name.tag)
            manifest = Manifest.parse(data)
        except RegistryError as exc:
            raise RegistryError(f"pull model manifest: {exc.message}") from exc
        except ManifestError as exc:
            raise RegistryError(f"pull model manifest: {exc}") from exc
        layers = manifest.all_layers()  # layers, then the config (Ollama's order)

        with store.pinned(manifest.digests()):  # keep finished layers from a concurrent prune
            for layer in layers:
                async for progress in DOWNLOADS.fetch(store, registry, layer, stall_timeout):
                    yield progress

            yield {"status": "verifying sha256 digest"}  # each blob was hashed before it got its name
            yield {"status": "writing manifest"}
            await asyncio.to_thread(store.write_manifest_bytes, name, data)
    if not store.noprune and old_digests - manifest.digests():
        yield {"status": "removing unused layers"}  # done by write_manifest_bytes
    yield {"status": "success"}
