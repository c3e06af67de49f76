"""Streaming model output to the terminal: word wrap, thinking blocks, the --verbose summary.

Word wrap works as ollama's `displayResponse`: characters are printed as they arrive, and
when a line would overflow, the word being typed is erased (cursor back, clear to end of
line) and reprinted on the next line. It only applies when stdout is a terminal.
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

from wcwidth import wcwidth

from pollama.cli.format import go_duration, width

GREY = "\033[38;5;245m"
BOLD = "\033[1m"
RESET = "\033[0m"


def terminal_width(stream: TextIO) -> int:
    try:
        if not stream.isatty():
            return 0
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


class Display:
    def __init__(self, word_wrap: bool = True, out: TextIO | None = None):
        self.out = out or sys.stdout
        self.word_wrap = word_wrap
        self.plain = terminal_width(self.out) == 0
        self.line = 0  # columns used on the current line
        self.word = ""  # the word being printed, to move it down on overflow
        self.thinking_open = False
        self.thinking_seen = False
        self.thinking_text = ""

    def reset(self) -> None:
        self.line, self.word = 0, ""

    def write(self, content: str) -> None:
        if not content:
            return
        cols = terminal_width(self.out) if self.word_wrap else 0
        if cols < 10:
            self.out.write(content)
            self._track(content)
        else:
            self.out.write(self._wrap(content, cols))
        self.out.flush()

    def _track(self, content: str) -> None:
        tail = content.rsplit("\n", 1)
        self.line = width(tail[-1]) if len(tail) > 1 else self.line + width(content)
        self.word = ""

    def _wrap(self, content: str, cols: int) -> str:
        parts: list[str] = []
        for ch in content:
            w = max(wcwidth(ch), 0)
            if ch in "\r\n":
                parts.append(ch)
                self.line, self.word = 0, ""
                continue
            if self.line + w > cols - 5:
                if ch in " \t":  # the break falls on a space: just start the next line
                    parts.append("\n")
                    self.line, self.word = 0, ""
                    continue
                if width(self.word) > cols - 10:  # a word too long to move: break it
                    parts.append("\n" + ch)
                    self.word = ch if w < 2 else ""
                    self.line = w
                    continue
                if self.word:
                    parts.append(f"\x1b[{width(self.word)}D")
                parts.append("\x1b[K\n" + self.word + ch)
                self.word = self.word + ch if w < 2 else ""
                self.line = width(self.word) if self.word else w
                continue
            parts.append(ch)
            self.line += w
            if w >= 2 or ch in " \t":
                self.word = ""
            else:
                self.word += ch
        return "".join(parts)

    # -- thinking ------------------------------------------------------------------------

    def thinking(self, text: str, hide: bool) -> None:
        if not text or hide:
            return
        if not self.thinking_open:
            opening = "Thinking...\n"
            self.out.write(opening if self.plain else GREY + BOLD + opening + RESET + GREY)
            self.thinking_open = True
        self.thinking_text += text
        self.write(text)

    def content(self, text: str) -> None:
        if self.thinking_open and text:
            if not self.thinking_text.endswith("\n"):
                self.out.write("\n")
            closing = "...done thinking.\n\n"
            self.out.write(closing if self.plain else GREY + BOLD + closing + RESET)
            self.thinking_open = False
            self.reset()
        self.write(text)

    def tool_calls(self, calls: list[dict[str, Any]]) -> None:
        import json

        lines = []
        for call in calls:
            fn = call.get("function", {})
            args = json.dumps(fn.get("arguments", {}), separators=(",", ":"))
            lines.append(
                f"  Model called a non-existent function '{fn.get('name', '')}()' with arguments: {args}"
            )
        text = "\n".join(lines)
        self.out.write(text if self.plain else GREY + BOLD + text + RESET)
        self.out.flush()


def summary(final: dict[str, Any], out: TextIO | None = None) -> None:
    """Ollama's `Metrics.Summary()`: the --verbose / `/set verbose` timing block, on stderr."""
    out = out or sys.stderr
    lines: list[tuple[str, str]] = []
    total, load = final.get("total_duration", 0), final.get("load_duration", 0)
    pcount, pdur = final.get("prompt_eval_count", 0), final.get("prompt_eval_duration", 0)
    count, dur = final.get("eval_count", 0), final.get("eval_duration", 0)
    if total > 0:
        lines.append(("total duration", go_duration(total)))
    if load > 0:
        lines.append(("load duration", go_duration(load)))
    if pcount > 0:
        lines.append(("prompt eval count", f"{pcount} token(s)"))
    if pdur > 0:
        lines.append(("prompt eval duration", go_duration(pdur)))
        lines.append(("prompt eval rate", f"{pcount / (pdur / 1e9):.2f} tokens/s"))
    if count > 0:
        lines.append(("eval count", f"{count} token(s)"))
    if dur > 0:
        lines.append(("eval duration", go_duration(dur)))
        lines.append(("eval rate", f"{count / (dur / 1e9):.2f} tokens/s"))
    for label, value in lines:
        print(f"{label + ':':<22}{value}", file=out)
    out.flush()
