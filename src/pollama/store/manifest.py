"""Docker schema-2 manifests and the `application/vnd.ollama.image.*` layer types (Ollama §4.2)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pollama.store import gojson
from pollama.store.digest import canonical

MEDIA_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_CONFIG = "application/vnd.docker.container.image.v1+json"

MEDIA_MODEL = "application/vnd.ollama.image.model"
MEDIA_PROJECTOR = "application/vnd.ollama.image.projector"
MEDIA_ADAPTER = "application/vnd.ollama.image.adapter"
MEDIA_TEMPLATE = "application/vnd.ollama.image.template"
MEDIA_PROMPT = "application/vnd.ollama.image.prompt"  # older name of the template layer, still read
MEDIA_SYSTEM = "application/vnd.ollama.image.system"
MEDIA_PARAMS = "application/vnd.ollama.image.params"
MEDIA_MESSAGES = "application/vnd.ollama.image.messages"
MEDIA_LICENSE = "application/vnd.ollama.image.license"
MEDIA_EMBED = "application/vnd.ollama.image.embed"  # deprecated, ignored
MEDIA_DRAFT = "application/vnd.ollama.image.draft"
MEDIA_TENSOR = "application/vnd.ollama.image.tensor"
MEDIA_JSON = "application/vnd.ollama.image.json"


class ManifestError(ValueError):
    """A manifest file that is not a schema-2 manifest pollama can serve."""


@dataclass(frozen=True)
class Layer:
    media_type: str
    digest: str  # always canonical "sha256:<hex>"
    size: int
    from_: str = ""  # the model this layer was inherited from ("from" in JSON)
    name: str = ""  # file or tensor name (safetensors layers)

    def to_json(self) -> dict[str, Any]:
        """Go's field order; `from` and `name` are omitempty."""
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.from_:
            out["from"] = self.from_
        if self.name:
            out["name"] = self.name
        return out

    @classmethod
    def from_json(cls, obj: Any) -> Layer:
        if not isinstance(obj, dict):
            raise ManifestError("layer is not an object")
        try:
            size = int(obj.get("size", 0))
            return cls(
                media_type=str(obj.get("mediaType", "")),
                digest=canonical(str(obj.get("digest", ""))),
                size=size,
                from_=str(obj.get("from", "") or ""),
                name=str(obj.get("name", "") or ""),
            )
        except Exception as e:  # APIError for a bad digest, ValueError for a bad size
            raise ManifestError(f"bad layer: {e}") from e

    def with_from(self, from_: str) -> Layer:
        return Layer(self.media_type, self.digest, self.size, from_, self.name)


@dataclass
class Manifest:
    config: Layer
    layers: list[Layer] = field(default_factory=list)
    schema_version: int = 2
    media_type: str = MEDIA_MANIFEST

    def to_bytes(self) -> bytes:
        """Exactly what Ollama's json.Marshal writes: compact, no trailing newline."""
        return gojson.dumps(
            {
                "schemaVersion": self.schema_version,
                "mediaType": self.media_type,
                "config": self.config.to_json(),
                "layers": [layer.to_json() for layer in self.layers],
            }
        )

    @classmethod
    def parse(cls, data: bytes) -> Manifest:
        try:
            obj = json.loads(data)
        except ValueError as e:
            raise ManifestError(f"invalid JSON: {e}") from e
        if not isinstance(obj, dict):
            raise ManifestError("manifest is not an object")
        if obj.get("mediaType") == "application/vnd.ollama.manifest.list.v2+json":
            raise ManifestError("manifest lists are not supported")
        config = obj.get("config")
        layers = obj.get("layers") or []
        if not isinstance(layers, list):
            raise ManifestError("layers is not a list")
        return cls(
            config=Layer.from_json(config)
            if isinstance(config, dict) and config.get("digest")
            else _NO_CONFIG,
            layers=[Layer.from_json(x) for x in layers],
            schema_version=int(obj.get("schemaVersion", 2) or 2),
            media_type=str(obj.get("mediaType", MEDIA_MANIFEST) or MEDIA_MANIFEST),
        )

    def all_layers(self) -> list[Layer]:
        """Layers plus the config, as Ollama counts them for size and references."""
        return [*self.layers, self.config] if self.config.digest else list(self.layers)

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.all_layers())

    def digests(self) -> set[str]:
        return {layer.digest for layer in self.all_layers()}


_NO_CONFIG = Layer(MEDIA_CONFIG, "", 0)
