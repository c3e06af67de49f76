"""Split a chat model's streamed output into thinking, content and tool calls.

Thinking comes first (the tags inferred from the template, ollama-reference §6.5), then
the remaining content goes through the tool-call parser when the request has tools
(§6.6). Both parsers hold back text that might be a partial tag, so no raw protocol text
leaks into `content` while streaming.
"""

from __future__ import annotations

import secrets
import string
from typing import Any

from pollama.prompt.thinking import ThinkingParser
from pollama.prompt.toolcalls import ToolCallParser

_ID_CHARS = string.ascii_lowercase + string.digits


def tool_call_id() -> str:
    """Ollama's form: `call_` + 8 random [a-z0-9]."""
    return "call_" + "".join(secrets.choice(_ID_CHARS) for _ in range(8))


class ChatOutput:
    def __init__(
        self,
        *,
        think_tags: tuple[str, str] | None,
        prompt: str,
        tools: list[dict[str, Any]] | None,
        tool_tag: str,
    ):
        self._thinking = ThinkingParser(*think_tags, prompt=prompt) if think_tags else None
        self._tools = ToolCallParser(tools, tool_tag or "{") if tools else None

    def add(self, text: str) -> tuple[str, str, list[dict[str, Any]]]:
        thinking, content = self._thinking.add(text) if self._thinking else ("", text)
        return (thinking, *self._content(content))

    def flush(self) -> tuple[str, str, list[dict[str, Any]]]:
        thinking, content = self._thinking.flush() if self._thinking else ("", "")
        content, calls = self._content(content)
        if self._tools is not None:
            content += self._tools.flush()
        return thinking, content, calls

    def _content(self, text: str) -> tuple[str, list[dict[str, Any]]]:
        if self._tools is None or not text:
            return text, []
        calls, content = self._tools.add(text)
        return content, [{"id": tool_call_id(), **call} for call in calls]
