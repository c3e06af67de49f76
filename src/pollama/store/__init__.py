"""Ollama's on-disk model store: content-addressed blobs, schema-2 manifests, config blobs."""

from pollama.store.blobs import Blob
from pollama.store.manifest import Layer, Manifest
from pollama.store.model import LocalModel
from pollama.store.store import Store

__all__ = ["Blob", "Layer", "LocalModel", "Manifest", "Store"]
