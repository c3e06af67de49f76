"""Request shapes of the model-management routes: create, show, copy, delete (reference §1.7-1.12).

Like the inference requests, types are strict as Go's encoding/json is, and unknown fields
(`info`, `remote_host`, `draft_files`, ...) are ignored.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from pollama.api.inference import Wire


class CreateMessage(Wire):
    role: str
    content: str = ""


class CreateRequest(Wire):
    model: str = ""
    name: str = ""  # deprecated spelling of `model`
    from_: str = Field(default="", alias="from")
    files: dict[str, str] | None = None
    adapters: dict[str, str] | None = None
    template: str = ""
    system: str = ""
    license: str | list[str] | None = None
    parameters: dict[str, Any] | None = None
    messages: list[CreateMessage] | None = None
    quantize: str = ""
    quantization: str = ""  # deprecated spelling of `quantize`
    renderer: str = ""
    parser: str = ""
    requires: str = ""
    stream: bool = True
    # the form before Ollama 0.5.5: a Modelfile parsed on the server, or a path to one
    modelfile: str = ""
    path: str = ""

    @property
    def target(self) -> str:
        return self.model or self.name

    @property
    def quantize_type(self) -> str:
        return self.quantize or self.quantization

    @property
    def licenses(self) -> list[str]:
        if not self.license:  # None, "" (Ollama skips an empty string) or []
            return []
        return [self.license] if isinstance(self.license, str) else list(self.license)


class ShowRequest(Wire):
    model: str = ""
    name: str = ""
    verbose: bool = False
    system: str = ""
    template: str = ""  # accepted and ignored, as Ollama does
    options: dict[str, Any] | None = None


class CopyRequest(Wire):
    source: str = ""
    destination: str = ""


class DeleteRequest(Wire):
    model: str = ""
    name: str = ""
