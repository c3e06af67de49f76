"""Model names: `[scheme://][host/][namespace/]model[:tag]`, parsed and validated in one place.

A parsed name is always safe to turn into a path under the store: every part is checked
against Ollama's character rules (first character `[A-Za-z0-9_]`, then `[A-Za-z0-9_.-]`,
`:` only in the host, no `.` in the namespace, never two dots in a row), so no part can be
empty, `.`/`..`, or contain a path separator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

_PART = {
    "host": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}"),
    "namespace": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,79}"),
    "model": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}"),
    "tag": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}"),
}


class InvalidName(ValueError):
    """The text is not a valid model name."""


@dataclass(frozen=True)
class ModelName:
    host: str
    namespace: str
    model: str
    tag: str
    scheme: str = ""  # "http" or "https" when the name was written with one

    @classmethod
    def parse(cls, text: str) -> ModelName:
        """Parse and fill defaults; raise InvalidName for anything Ollama would reject."""
        if not isinstance(text, str):
            raise InvalidName(repr(text))
        scheme = ""
        for prefix in ("http://", "https://"):
            if text.startswith(prefix):
                scheme, text = prefix[:-3], text[len(prefix) :]
        if not text or ".." in text:
            raise InvalidName(text)
        tag = ""
        slash, colon = text.rfind("/"), text.rfind(":")
        if colon > slash:
            text, tag = text[:colon], text[colon + 1 :]
            if not tag:
                raise InvalidName(text)
        pieces = text.split("/")
        if len(pieces) > 3:
            raise InvalidName(text)
        model = pieces[-1]
        namespace = pieces[-2] if len(pieces) >= 2 else ""
        host = pieces[-3] if len(pieces) == 3 else ""
        name = cls(host or DEFAULT_HOST, namespace or DEFAULT_NAMESPACE, model, tag or DEFAULT_TAG, scheme)
        for kind in ("host", "namespace", "model", "tag"):
            if not _PART[kind].fullmatch(getattr(name, kind)):
                raise InvalidName(text)
        if (len(pieces) >= 2 and not namespace) or (len(pieces) == 3 and not host):
            raise InvalidName(text)
        return name

    @classmethod
    def is_valid(cls, text: str) -> bool:
        try:
            cls.parse(text)
        except InvalidName:
            return False
        return True

    def __str__(self) -> str:
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    @property
    def display(self) -> str:
        """Ollama's DisplayShortest: leave out the default host, namespace (and keep the tag)."""
        if self.host.lower() != DEFAULT_HOST:
            return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"
        if self.namespace.lower() != DEFAULT_NAMESPACE:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.model}:{self.tag}"

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Case-insensitive identity, as Ollama matches installed names."""
        return (self.host.lower(), self.namespace.lower(), self.model.lower(), self.tag.lower())

    @property
    def manifest_parts(self) -> PurePosixPath:
        """`<host>/<namespace>/<model>/<tag>`, relative to `manifests/`."""
        return PurePosixPath(self.host, self.namespace, self.model, self.tag)

    @property
    def repository(self) -> str:
        """`<namespace>/<model>`, as the registry's /v2/ paths want it."""
        return f"{self.namespace}/{self.model}"

    def with_tag(self, tag: str) -> ModelName:
        return ModelName(self.host, self.namespace, self.model, tag, self.scheme)
