"""An installed model as the rest of pollama sees it: a manifest read and its small layers loaded."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from pollama.names import ModelName
from pollama.store.manifest import (
    MEDIA_ADAPTER,
    MEDIA_DRAFT,
    MEDIA_LICENSE,
    MEDIA_MESSAGES,
    MEDIA_MODEL,
    MEDIA_PARAMS,
    MEDIA_PROJECTOR,
    MEDIA_PROMPT,
    MEDIA_SYSTEM,
    MEDIA_TEMPLATE,
    Manifest,
)

log = logging.getLogger(__name__)


@dataclass
class LocalModel:
    name: ModelName  # with the casing found on disk
    digest: str  # sha256 hex of the manifest file bytes (what /api/tags shows)
    modified_at: datetime  # manifest file mtime, local time zone
    size: int  # sum of layer + config sizes
    config: dict[str, Any]  # the ConfigV2 JSON
    manifest: Manifest
    manifest_path: Path
    model_path: Path | None = None  # first model layer (a split GGUF's first shard)
    model_paths: list[Path] = field(default_factory=list)  # every model layer, in order
    projector_paths: list[Path] = field(default_factory=list)
    adapter_paths: list[Path] = field(default_factory=list)
    draft_path: Path | None = None
    template: str | None = None
    system: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    licenses: list[str] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    parent_model: str = ""  # the model layer's `from`

    @cached_property
    def capabilities(self) -> list[str]:
        """completion/embedding, tools, insert, vision, thinking — as Ollama detects them."""
        from pollama.store.capabilities import model_capabilities

        return model_capabilities(self)

    @property
    def short_name(self) -> str:
        return self.name.display

    def details(self, *, with_parent: bool = True) -> dict[str, Any]:
        """Ollama's api.ModelDetails from the config blob (/api/tags leaves parent_model empty)."""
        cf = self.config
        families = cf.get("model_families")
        return {
            "parent_model": self.parent_model if with_parent else "",
            "format": cf.get("model_format", "") or "",
            "family": cf.get("model_family", "") or "",
            "families": list(families) if isinstance(families, list) else None,
            "parameter_size": cf.get("model_type", "") or "",
            "quantization_level": cf.get("file_type", "") or "",
        }


def load_layers(model: LocalModel, blob_path) -> None:
    """Fill the layer-derived fields the way Ollama's GetModel does (server/images.go)."""
    for layer in model.manifest.layers:
        mt = layer.media_type
        if mt == MEDIA_MODEL:
            path = blob_path(layer.digest)
            model.model_paths.append(path)
            if model.model_path is None:
                model.model_path = path
                model.parent_model = layer.from_
        elif mt == MEDIA_PROJECTOR:
            model.projector_paths.append(blob_path(layer.digest))
        elif mt == MEDIA_ADAPTER:
            model.adapter_paths.append(blob_path(layer.digest))
        elif mt == MEDIA_DRAFT:
            model.draft_path = blob_path(layer.digest)
        elif mt in (MEDIA_TEMPLATE, MEDIA_PROMPT):
            model.template = _read_text(blob_path(layer.digest))
        elif mt == MEDIA_SYSTEM:
            model.system = _read_text(blob_path(layer.digest))
        elif mt == MEDIA_LICENSE:
            model.licenses.append(_read_text(blob_path(layer.digest)))
        elif mt == MEDIA_PARAMS:
            params = _read_json(blob_path(layer.digest))
            if isinstance(params, dict):
                model.params = params
        elif mt == MEDIA_MESSAGES:
            messages = _read_json(blob_path(layer.digest))
            if isinstance(messages, list):
                model.messages = [m for m in messages if isinstance(m, dict)]


def _read_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except ValueError:
        log.warning("ignoring a layer that is not valid JSON: %s", path)
        return None
