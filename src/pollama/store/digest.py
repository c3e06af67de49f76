"""Blob digests: `sha256:<hex>` on the wire and in manifests, `sha256-<hex>` as a file name."""

from __future__ import annotations

import re

from pollama.api.errors import APIError

_DIGEST = re.compile(r"sha256[:-]([0-9a-fA-F]{64})")


def invalid_digest() -> APIError:
    return APIError(400, "invalid digest format")


def digest_hex(digest: str) -> str:
    """The lowercase hex of a `sha256:`/`sha256-` digest; APIError(400) for anything else."""
    m = _DIGEST.fullmatch(digest) if isinstance(digest, str) else None
    if not m:
        raise invalid_digest()
    return m.group(1).lower()


def is_digest(digest: str) -> bool:
    return isinstance(digest, str) and _DIGEST.fullmatch(digest) is not None


def canonical(digest: str) -> str:
    """`sha256:<lowercase hex>`, the form manifests and API responses use."""
    return "sha256:" + digest_hex(digest)


def blob_filename(digest: str) -> str:
    """`sha256-<hex>`: ':' is not allowed in file names on every OS, so Ollama uses '-'."""
    return "sha256-" + digest_hex(digest)
