"""The config blob (Ollama's ConfigV2, reference §4.3), built from GGUF metadata."""

from __future__ import annotations

from typing import Any

from pollama.store.gguf_meta import GGUFInfo, human_number


def describe_gguf(infos: list[GGUFInfo]) -> dict[str, Any]:
    """model_format/family/families/type/file_type for the GGUF layers of one model.

    The first GGUF decides family, type and file type (Ollama's cmp.Or); every GGUF adds
    its architecture to families (a vision projector adds "clip"). A split model's shards
    are passed together so the parameter count covers all of them.
    """
    if not infos:
        return {}
    first = infos[0]
    families: list[str] = []
    for info in infos:
        if info.architecture and info.architecture not in families:
            families.append(info.architecture)
    return {
        "model_format": "gguf",
        "model_family": first.architecture,
        "model_families": families,
        "model_type": human_number(sum(i.parameter_count for i in infos)),
        "file_type": first.file_type,
    }


def new_config(fields: dict[str, Any], layer_digests: list[str]) -> dict[str, Any]:
    """A ConfigV2 in Go's field order; empty optional fields left out as Go's omitempty does."""
    config: dict[str, Any] = {
        "model_format": fields.get("model_format", ""),
        "model_family": fields.get("model_family", ""),
        "model_families": fields.get("model_families") or None,
        "model_type": fields.get("model_type", ""),
        "file_type": fields.get("file_type", ""),
    }
    for key in ("renderer", "parser", "requires", "remote_host", "remote_model", "capabilities",
                "context_length", "embedding_length", "base_name"):  # fmt: skip
        if fields.get(key):
            config[key] = fields[key]
    config["architecture"] = "amd64"
    config["os"] = "linux"
    config["rootfs"] = {"type": "layers", "diff_ids": list(layer_digests)}
    return config
