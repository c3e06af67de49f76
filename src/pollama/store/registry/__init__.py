"""The OCI registry protocol as Ollama speaks it: pull and push with progress, auth, resumption."""

from pollama.store.registry.auth import ensure_keypair
from pollama.store.registry.client import RegistryError
from pollama.store.registry.pull import pull_model
from pollama.store.registry.push import push_model

__all__ = ["RegistryError", "ensure_keypair", "pull_model", "push_model"]
