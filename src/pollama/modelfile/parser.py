"""Modelfile text to commands, and commands back to text (ollama-reference §3).

The grammar is Ollama's (`parser/parser.go`): one `INSTRUCTION argument` per line, the
instruction in any case, `#` comment lines, and three ways to write an argument — bare
(the rest of the line, trimmed), `"..."` or `\"\"\"...\"\"\"` (which may span lines; the
value ends at the first line end where the text so far is a complete quoted string).
PARAMETER takes a name first, MESSAGE a role. Characters Go would not print are dropped
from arguments, as Ollama drops them.

Where Ollama's errors are vague (`unexpected EOF`) or point at the wrong line, these say
what is wrong and on which line; every error carries its line number.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field

from pollama.modelfile.gofmt import is_print

INSTRUCTIONS = (
    "from",
    "license",
    "template",
    "system",
    "adapter",
    "draft",
    "renderer",
    "parser",
    "parameter",
    "message",
    "requires",
)
ROLES = ("system", "user", "assistant")

_INVALID_COMMAND = (
    'command must be one of "from", "license", "template", "system", "adapter", "draft", '
    '"renderer", "parser", "parameter", "message", or "requires"'
)
_INVALID_ROLE = 'message role must be one of "system", "user", or "assistant"'


class ModelfileError(ValueError):
    """A Modelfile that cannot be parsed; `str()` is `(line N): message` as Ollama prints it."""

    def __init__(self, message: str, line: int = 0):
        super().__init__(f"(line {line}): {message}" if line > 0 else message)
        self.message = message
        self.line = line


@dataclass(frozen=True)
class Command:
    instruction: str  # lower case: "from", "parameter", "message", ...
    value: str
    key: str = ""  # the parameter name (PARAMETER) or the role (MESSAGE)
    line: int = 0  # where the instruction starts (0 for commands built in code)

    def render(self) -> str:
        if self.instruction == "parameter":
            return f"PARAMETER {self.key} {quote(self.value)}"
        if self.instruction == "message":
            return f"MESSAGE {self.key} {quote(self.value)}"
        return f"{self.instruction.upper()} {quote(self.value)}"

    def same(self, other: Command) -> bool:
        """Equal ignoring where each came from."""
        return (self.instruction, self.key, self.value) == (other.instruction, other.key, other.value)


@dataclass
class Modelfile:
    commands: list[Command] = field(default_factory=list)

    def render(self) -> str:
        return "".join(c.render() + "\n" for c in self.commands)

    def of(self, instruction: str) -> list[Command]:
        return [c for c in self.commands if c.instruction == instruction]


def quote(value: str) -> str:
    """Ollama's quoting for rendered arguments, made safe for every value that can be read back:
    values with line breaks, surrounding whitespace or a leading quote are quoted (with
    triple quotes when they contain a `"`), an empty value is written `""`."""
    if value == "":
        return '""'
    if "\n" in value or "\r" in value or value != value.strip() or value.startswith('"'):
        return f'"""{value}"""' if '"' in value else f'"{value}"'
    return value


def decode(raw: bytes) -> str:
    """Modelfile bytes to text: UTF-16 when it starts with a UTF-16 byte-order mark, else UTF-8
    (a UTF-8 BOM is dropped; invalid bytes become U+FFFD as Go's decoder makes them)."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16", errors="replace")
    return raw.decode("utf-8", errors="replace").removeprefix("\ufeff")


def unquote(text: str) -> tuple[str, bool]:
    """The value of a trimmed argument, and whether it is complete (quotes closed)."""
    if text.startswith('"""'):
        if len(text) >= 6 and text.endswith('"""'):
            return text[3:-3], True
        return "", False
    if text.startswith('"'):
        if len(text) >= 2 and text.endswith('"'):
            return text[1:-1], True
        return "", False
    return text, True


_NEWLINES = "\r\n"
_SPACES = " \t"


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.commands: list[Command] = []

    def error(self, message: str, line: int) -> ModelfileError:
        return ModelfileError(message, line)

    def parse(self) -> Modelfile:
        text, pos, line, n = self.text, 0, 1, len(self.text)
        while pos < n:
            ch = text[pos]
            if ch in _NEWLINES:
                line += ch == "\n" or not text.startswith("\n", pos + 1)
                pos += 1
            elif ch in _SPACES or not is_print(ch):
                pos += 1
            elif ch == "#":
                while pos < n and text[pos] not in _NEWLINES:
                    pos += 1
            else:
                pos, line = self.command(pos, line)
        if not any(c.instruction == "from" for c in self.commands):
            raise ModelfileError("no FROM line")
        return Modelfile(self.commands)

    def word(self, pos: int, allowed) -> tuple[str, int]:
        start = pos
        while pos < len(self.text) and allowed(self.text[pos]):
            pos += 1
        return self.text[start:pos], pos

    def command(self, pos: int, line: int) -> tuple[int, int]:
        text = self.text
        start = pos
        name, pos = self.word(pos, lambda c: c.isascii() and c.isalpha())
        instruction = name.lower()
        if instruction not in INSTRUCTIONS or (pos < len(text) and text[pos] not in _SPACES + _NEWLINES):
            got, _ = self.word(start, lambda c: c not in _SPACES + _NEWLINES)
            raise self.error(f'{_INVALID_COMMAND} (got "{got}")', line)
        pos = self._skip_spaces(pos)
        key = ""
        if instruction == "parameter":
            self._need(pos, line, "PARAMETER needs a name and a value")
            key, pos = self.word(pos, lambda c: c.isascii() and (c.isalnum() or c == "_"))
            if pos < len(text) and text[pos] not in _SPACES + _NEWLINES:
                got, _ = self.word(pos - len(key), lambda c: c not in _SPACES + _NEWLINES)
                raise self.error(f'invalid parameter name "{got}" (letters, digits and _ only)', line)
            self._need(self._skip_spaces(pos), line, f"PARAMETER {key} needs a value")
        elif instruction == "message":
            self._need(pos, line, "MESSAGE needs a role and a message")
            key, pos = self.word(pos, lambda c: c not in _SPACES + _NEWLINES)
            if key not in ROLES:
                raise self.error(f'{_INVALID_ROLE} (got "{key}")', line)
            self._need(self._skip_spaces(pos), line, f"MESSAGE {key} needs a message")
        else:
            self._need(pos, line, f"{name.upper()} needs an argument")
        value, pos, end_line = self.value(self._skip_spaces(pos), line, name.upper())
        self.commands.append(Command(instruction, value, key, line))
        return pos, end_line

    def _skip_spaces(self, pos: int) -> int:
        while pos < len(self.text) and self.text[pos] in _SPACES:
            pos += 1
        return pos

    def _need(self, pos: int, line: int, message: str) -> None:
        if pos >= len(self.text) or self.text[pos] in _NEWLINES:
            raise self.error(message, line)

    def value(self, pos: int, line: int, instruction: str) -> tuple[str, int, int]:
        """Read an argument up to the line end where it is complete; returns (value, pos, line)."""
        text, n, start_line = self.text, len(self.text), line
        buf: list[str] = []
        while True:
            end = pos
            while end < n and text[end] not in _NEWLINES:
                end += 1
            buf.append("".join(c for c in text[pos:end] if c in _SPACES or is_print(c)))
            value, complete = unquote("".join(buf).strip())
            if complete:
                return value, end, line
            if end >= n:
                opener = '"""' if "".join(buf).lstrip().startswith('"""') else '"'
                raise self.error(
                    f"{instruction}: the {opener} opened on line {start_line} is never closed", start_line
                )
            newline = "\r\n" if text.startswith("\r\n", end) else text[end]
            buf.append(newline)
            pos, line = end + len(newline), line + 1


def parse(source: str | bytes) -> Modelfile:
    """Parse a Modelfile; raises ModelfileError with the line of the first problem."""
    text = decode(source) if isinstance(source, bytes | bytearray) else source.removeprefix("\ufeff")
    return _Parser(text).parse()
