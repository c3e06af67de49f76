"""The wire contract: request/response shapes and Ollama's exact error messages."""

from pollama.api.errors import APIError

__all__ = ["APIError"]
