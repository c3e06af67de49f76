"""Request shapes of /api/generate and /api/chat (ollama-reference §1.3-1.4).

Validation is strict like Go's encoding/json: a number is not a string and a string is
not a bool. Unknown fields are ignored, as Go does.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

THINK_LEVELS = ("high", "medium", "low", "max")
_B64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def check_base64(images: list[str] | None) -> list[str] | None:
    """Images are base64 (standard alphabet, padded); Go's error names the first bad byte."""
    for image in images or ():
        data = image.encode("utf-8", "surrogatepass")
        body = data.rstrip(b"=")
        for i, byte in enumerate(body):
            if byte not in _B64:
                raise ValueError(f"illegal base64 data at input byte {i}")
        padding = len(data) - len(body)
        if padding > 2 or len(data) % 4:
            raise ValueError(f"illegal base64 data at input byte {len(body) - (len(body) % 4)}")
    return images


class Wire(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        """Go leaves a field at its zero value when the JSON says null; so do we."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data


class ToolCallFunction(Wire):
    name: str = ""
    arguments: dict[str, Any] = Field(default_factory=dict)
    index: int | None = None


class ToolCall(Wire):
    id: str | None = None
    function: ToolCallFunction


class Message(Wire):
    role: str
    content: str = ""
    thinking: str | None = None
    images: list[str] | None = None
    tool_calls: list[ToolCall] | None = None
    tool_name: str | None = None
    tool_call_id: str | None = None

    @field_validator("role")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.lower()  # Ollama lower-cases roles on unmarshal

    _check_images = field_validator("images")(classmethod(lambda cls, v: check_base64(v)))

    def wire(self) -> dict[str, Any]:
        """The message as the prompt renderer takes it (plain JSON-shaped dict)."""
        return self.model_dump(exclude_none=True)


class Tool(Wire):
    type: str = "function"
    function: dict[str, Any]


def check_think(value: bool | str | None) -> bool | str | None:
    if value is None or isinstance(value, bool) or value in THINK_LEVELS:
        return value
    raise ValueError(
        f'invalid think value: "{value}" (must be "high", "medium", "low", "max", true, or false)'
    )


class _Common(Wire):
    model: str = ""
    stream: bool = True
    format: Any = None  # "json" or a JSON schema; anything else is refused when used
    keep_alive: float | int | str | None = None
    options: dict[str, Any] | None = None
    think: bool | str | None = None
    truncate: bool = True
    shift: bool = True
    logprobs: bool = False
    top_logprobs: int = 0
    debug_render_only: bool = Field(default=False, alias="_debug_render_only")

    _check_think = field_validator("think")(classmethod(lambda cls, v: check_think(v)))


class GenerateRequest(_Common):
    prompt: str = ""
    suffix: str = ""
    system: str | None = None
    template: str | None = None
    context: list[int] | None = None
    raw: bool = False
    images: list[str] | None = None

    _check_images = field_validator("images")(classmethod(lambda cls, v: check_base64(v)))


class ChatRequest(_Common):
    messages: list[Message] = Field(default_factory=list)
    tools: list[Tool] | None = None
