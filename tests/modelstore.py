"""Install a model variant (the bundled weights with another TEMPLATE) into a server's store.

Written with pollama's own Store API, exactly as a create writes it (blobs, then the config
blob, then the manifest), so the running server sees it on its next request. Used until the
tests can go through POST /api/create for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pollama.names import ModelName
from pollama.store import Store
from pollama.store.manifest import MEDIA_MODEL, MEDIA_PARAMS, MEDIA_TEMPLATE

TEMPLATES = Path(__file__).parent / "fixtures" / "templates"


def install_variant(
    models: Path,
    name: str,
    template: str,
    *,
    base: str = "gemma3:270m-text",
    params: dict[str, Any] | None = None,
) -> None:
    import json

    store = Store(models, noprune=True)
    src = store.resolve(ModelName.parse(base))
    assert src is not None, f"{base} is not installed"
    layers = [layer for layer in src.manifest.layers if layer.media_type == MEDIA_MODEL]
    layers.append(store.write_blob(template.encode()).layer(MEDIA_TEMPLATE))
    if params:
        layers.append(store.write_blob(json.dumps(params).encode()).layer(MEDIA_PARAMS))
    config = {k: v for k, v in src.config.items() if k != "rootfs"}
    store.write_manifest(ModelName.parse(name), config, layers)


def template(name: str) -> str:
    return (TEMPLATES / name).read_text()


def unload_all(base_url: str) -> None:
    """Unload every model a test module loaded into the shared server, so later modules see
    the /api/ps they expect (keep_alive 0: embedding models through /api/embed)."""
    import httpx

    with httpx.Client(base_url=base_url, timeout=120) as http:
        for m in http.get("/api/ps").json()["models"]:
            if m["details"].get("family") == "bert":
                http.post("/api/embed", json={"model": m["name"], "keep_alive": 0})
            else:
                http.post("/api/generate", json={"model": m["name"], "keep_alive": 0})
