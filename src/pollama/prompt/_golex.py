"""Lexer for Go's text/template, a port of the state machine in `text/template/parse/lex.go`.

The whole source is lexed up front into a list of items; a lexical error becomes an
ERROR item (followed by EOF) at the place it happened, so the parser reports errors in
source order exactly as Go's lazy lexer would.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from enum import IntEnum


class T(IntEnum):
    ERROR = 0
    BOOL = 1
    CHAR = 2  # printable ASCII char inside an action, e.g. ','
    CHAR_CONSTANT = 3
    ASSIGN = 4
    DECLARE = 5
    EOF = 6
    FIELD = 7
    IDENTIFIER = 8
    LEFT_DELIM = 9
    LEFT_PAREN = 10
    NUMBER = 11
    PIPE = 12
    RAW_STRING = 13
    RIGHT_DELIM = 14
    RIGHT_PAREN = 15
    SPACE = 16
    STRING = 17
    TEXT = 18
    VARIABLE = 19
    KEYWORD = 20  # everything above is a keyword
    BLOCK = 21
    BREAK = 22
    CONTINUE = 23
    DOT = 24
    DEFINE = 25
    ELSE = 26
    END = 27
    IF = 28
    NIL = 29
    RANGE = 30
    TEMPLATE = 31
    WITH = 32


KEYWORDS = {
    "block": T.BLOCK,
    "break": T.BREAK,
    "continue": T.CONTINUE,
    "define": T.DEFINE,
    "else": T.ELSE,
    "end": T.END,
    "if": T.IF,
    "nil": T.NIL,
    "range": T.RANGE,
    "template": T.TEMPLATE,
    "with": T.WITH,
}

SPACES = " \t\r\n"
LEFT = "{{"
RIGHT = "}}"


@dataclass(frozen=True, slots=True)
class Item:
    typ: T
    val: str
    pos: int
    line: int

    def __str__(self) -> str:  # Go's item.String(), used in "unexpected X in Y"
        if self.typ == T.EOF:
            return "EOF"
        if self.typ == T.ERROR:
            return self.val
        if self.typ > T.KEYWORD:
            return f"<{self.val}>"
        if len(self.val) > 10:
            return go_quote_trunc(self.val, 10) + "..."
        return go_quote_trunc(self.val, None)


def go_quote_trunc(s: str, n: int | None) -> str:
    from ._gofmt import go_quote

    return go_quote(s if n is None else s[:n])


def is_alnum(c: str) -> bool:
    return c == "_" or c.isalpha() or c.isdigit()


def fmt_rune(c: str) -> str:
    """Go's %#U: U+0023 '#'."""
    code = f"U+{ord(c):04X}"
    return f"{code} '{c}'" if c.isprintable() else code


class Lexer:
    def __init__(self, src: str):
        self.src = src
        self.n = len(src)
        self.pos = 0
        self.start = 0
        self.paren_depth = 0
        self.items: list[Item] = []
        # Newline offsets, to give every item its line number by bisection.
        self._nl = [i for i, c in enumerate(src) if c == "\n"]

    def line_at(self, pos: int) -> int:
        return 1 + bisect.bisect_left(self._nl, pos)

    def run(self) -> list[Item]:
        state = self.lex_text
        while state is not None:
            state = state()
        return self.items

    # -- helpers -----------------------------------------------------------------
    def emit(self, typ: T) -> None:
        self.items.append(Item(typ, self.src[self.start : self.pos], self.start, self.line_at(self.start)))
        self.start = self.pos

    def ignore(self) -> None:
        self.start = self.pos

    def errorf(self, msg: str) -> None:
        self.items.append(Item(T.ERROR, msg, self.start, self.line_at(self.start)))
        self.items.append(Item(T.EOF, "", self.n, self.line_at(self.n)))
        return None

    def has_left_trim(self, at: int) -> bool:
        return at + 1 < self.n and self.src[at] == "-" and self.src[at + 1] in SPACES

    def has_right_trim(self, at: int) -> bool:
        return at + 1 < self.n and self.src[at] in SPACES and self.src[at + 1] == "-"

    def at_right_delim(self) -> tuple[bool, bool]:
        if self.has_right_trim(self.pos) and self.src.startswith(RIGHT, self.pos + 2):
            return True, True
        if self.src.startswith(RIGHT, self.pos):
            return True, False
        return False, False

    def skip_spaces(self) -> None:
        while self.pos < self.n and self.src[self.pos] in SPACES:
            self.pos += 1

    def at_terminator(self) -> bool:
        if self.pos >= self.n:
            return True
        c = self.src[self.pos]
        return c in SPACES or c in ".,|:)(" or self.src.startswith(RIGHT, self.pos)

    def accept(self, valid: str) -> bool:
        if self.pos < self.n and self.src[self.pos] in valid:
            self.pos += 1
            return True
        return False

    def accept_run(self, valid: str) -> None:
        while self.pos < self.n and self.src[self.pos] in valid:
            self.pos += 1

    # -- states ------------------------------------------------------------------
    def lex_text(self):
        x = self.src.find(LEFT, self.pos)
        if x < 0:
            self.pos = self.n
            if self.pos > self.start:
                self.emit(T.TEXT)
            self.emit(T.EOF)
            return None
        self.pos = x
        trim = 0
        if self.has_left_trim(x + len(LEFT)):
            text = self.src[self.start : x]
            trim = len(text) - len(text.rstrip(SPACES))
        self.pos -= trim
        if self.pos > self.start:
            self.emit(T.TEXT)
        self.pos += trim
        self.ignore()
        return self.lex_left_delim

    def lex_left_delim(self):
        self.pos += len(LEFT)
        trim = self.has_left_trim(self.pos)
        after = 2 if trim else 0
        if self.src.startswith("/*", self.pos + after):
            self.pos += after
            self.ignore()
            return self.lex_comment
        self.emit(T.LEFT_DELIM)
        self.pos += after
        self.ignore()
        self.paren_depth = 0
        return self.lex_inside_action

    def lex_comment(self):
        self.pos += 2
        x = self.src.find("*/", self.pos)
        if x < 0:
            return self.errorf("unclosed comment")
        self.pos = x + 2
        delim, trim = self.at_right_delim()
        if not delim:
            return self.errorf("comment ends before closing delimiter")
        if trim:
            self.pos += 2
        self.pos += len(RIGHT)
        if trim:
            self.skip_spaces()
        self.ignore()  # comments are dropped, as Go does without ParseComments
        return self.lex_text

    def lex_right_delim(self):
        _, trim = self.at_right_delim()
        if trim:
            self.pos += 2
            self.ignore()
        self.pos += len(RIGHT)
        self.emit(T.RIGHT_DELIM)
        if trim:
            self.skip_spaces()
            self.ignore()
        return self.lex_text

    def lex_inside_action(self):
        delim, _ = self.at_right_delim()
        if delim:
            if self.paren_depth == 0:
                return self.lex_right_delim
            return self.errorf("unclosed left paren")
        if self.pos >= self.n:
            return self.errorf("unclosed action")
        c = self.src[self.pos]
        if c in SPACES:
            return self.lex_space
        self.pos += 1
        if c == "=":
            self.emit(T.ASSIGN)
        elif c == ":":
            if not self.accept("="):
                return self.errorf("expected :=")
            self.emit(T.DECLARE)
        elif c == "|":
            self.emit(T.PIPE)
        elif c == '"':
            return self.lex_quote
        elif c == "`":
            return self.lex_raw_quote
        elif c == "$":
            return self.lex_field_or_variable(T.VARIABLE)
        elif c == "'":
            return self.lex_char
        elif c == "." and self.pos < self.n and not ("0" <= self.src[self.pos] <= "9"):
            return self.lex_field_or_variable(T.FIELD)
        elif c in "+-." or "0" <= c <= "9":
            self.pos -= 1
            return self.lex_number
        elif is_alnum(c):
            self.pos -= 1
            return self.lex_identifier
        elif c == "(":
            self.paren_depth += 1
            self.emit(T.LEFT_PAREN)
        elif c == ")":
            self.paren_depth -= 1
            if self.paren_depth < 0:
                return self.errorf("unexpected right paren")
            self.emit(T.RIGHT_PAREN)
        elif c <= "\x7f" and c.isprintable():
            self.emit(T.CHAR)
        else:
            return self.errorf(f"unrecognized character in action: {fmt_rune(c)}")
        return self.lex_inside_action

    def lex_space(self):
        num = 0
        while self.pos < self.n and self.src[self.pos] in SPACES:
            self.pos += 1
            num += 1
        # A space followed by "-}}" belongs to the trim-marked closing delimiter.
        if self.has_right_trim(self.pos - 1) and self.src.startswith(RIGHT, self.pos + 1):
            self.pos -= 1
            if num == 1:
                return self.lex_inside_action
        self.emit(T.SPACE)
        return self.lex_inside_action

    def lex_identifier(self):
        while self.pos < self.n and is_alnum(self.src[self.pos]):
            self.pos += 1
        if not self.at_terminator():
            return self.errorf(f"bad character {fmt_rune(self.src[self.pos])}")
        word = self.src[self.start : self.pos]
        if word in KEYWORDS:
            self.emit(KEYWORDS[word])
        elif word in ("true", "false"):
            self.emit(T.BOOL)
        else:
            self.emit(T.IDENTIFIER)
        return self.lex_inside_action

    def lex_field_or_variable(self, typ: T):
        if self.at_terminator():  # a lone "." or "$"
            self.emit(T.VARIABLE if typ == T.VARIABLE else T.DOT)
            return self.lex_inside_action
        while self.pos < self.n and is_alnum(self.src[self.pos]):
            self.pos += 1
        if not self.at_terminator():
            return self.errorf(f"bad character {fmt_rune(self.src[self.pos])}")
        self.emit(typ)
        return self.lex_inside_action

    def _lex_quoted(self, quote: str, what: str):
        while True:
            if self.pos >= self.n:
                return self.errorf(f"unterminated {what}")
            c = self.src[self.pos]
            self.pos += 1
            if c == "\\":
                if self.pos < self.n and self.src[self.pos] != "\n":
                    self.pos += 1
                    continue
                return self.errorf(f"unterminated {what}")
            if c == "\n":
                return self.errorf(f"unterminated {what}")
            if c == quote:
                return True

    def lex_quote(self):
        if self._lex_quoted('"', "quoted string") is None:
            return None
        self.emit(T.STRING)
        return self.lex_inside_action

    def lex_char(self):
        if self._lex_quoted("'", "character constant") is None:
            return None
        self.emit(T.CHAR_CONSTANT)
        return self.lex_inside_action

    def lex_raw_quote(self):
        x = self.src.find("`", self.pos)
        if x < 0:
            return self.errorf("unterminated raw quoted string")
        self.pos = x + 1
        self.emit(T.RAW_STRING)
        return self.lex_inside_action

    def lex_number(self):
        ok = self.scan_number()
        if ok and self.pos < self.n and self.src[self.pos] in "+-":
            # Complex numbers ("1+2i") are not supported: reject like a bad number.
            self.pos += 1
            ok = False
        if not ok:
            return self.errorf(f"bad number syntax: {go_quote_trunc(self.src[self.start : self.pos], None)}")
        self.emit(T.NUMBER)
        return self.lex_inside_action

    def scan_number(self) -> bool:
        self.accept("+-")
        digits = "0123456789_"
        if self.accept("0"):
            if self.accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif self.accept("oO"):
                digits = "01234567_"
            elif self.accept("bB"):
                digits = "01_"
        self.accept_run(digits)
        if self.accept("."):
            self.accept_run(digits)
        if len(digits) == 11 and self.accept("eE"):
            self.accept("+-")
            self.accept_run("0123456789_")
        if len(digits) == 23 and self.accept("pP"):
            self.accept("+-")
            self.accept_run("0123456789_")
        if self.pos < self.n and is_alnum(self.src[self.pos]):  # includes the imaginary "i"
            self.pos += 1
            return False
        return True


def lex(src: str) -> list[Item]:
    return Lexer(src).run()
