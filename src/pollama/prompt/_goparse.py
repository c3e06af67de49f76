"""Parse tree and parser for Go's text/template, a port of `text/template/parse/parse.go`.

Error messages are Go's (`template: :LINE: unexpected EOF`, `function "x" not defined`,
`undefined variable "$x"`, ...). Nesting is bounded so that a hostile template cannot
exhaust the Python stack while being parsed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._gofmt import go_quote
from ._golex import Item, T, lex
from .errors import TemplateError

MAX_NESTING = 100


# -- nodes ---------------------------------------------------------------------------------------
@dataclass(eq=False)
class Node:
    pos: int
    line: int


@dataclass(eq=False)
class TextNode(Node):
    text: str

    def __str__(self) -> str:
        return go_quote(self.text)


@dataclass(eq=False)
class ListNode(Node):
    nodes: list[Node] = field(default_factory=list)

    def __str__(self) -> str:
        return "".join(str(n) for n in self.nodes)


@dataclass(eq=False)
class FieldNode(Node):
    ident: list[str]

    def __str__(self) -> str:
        return "".join("." + i for i in self.ident)


@dataclass(eq=False)
class VariableNode(Node):
    ident: list[str]

    def __str__(self) -> str:
        return ".".join(self.ident)


@dataclass(eq=False)
class DotNode(Node):
    def __str__(self) -> str:
        return "."


@dataclass(eq=False)
class NilNode(Node):
    def __str__(self) -> str:
        return "nil"


@dataclass(eq=False)
class BoolNode(Node):
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@dataclass(eq=False)
class NumberNode(Node):
    text: str
    value: Any  # int or float as Go's idealConstant would produce; None if it overflows int

    def __str__(self) -> str:
        return self.text


@dataclass(eq=False)
class StringNode(Node):
    quoted: str
    text: str

    def __str__(self) -> str:
        return self.quoted


@dataclass(eq=False)
class IdentifierNode(Node):
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(eq=False)
class CommandNode(Node):
    args: list[Node] = field(default_factory=list)

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, PipeNode) else str(a) for a in self.args)


@dataclass(eq=False)
class PipeNode(Node):
    is_assign: bool = False
    decl: list[VariableNode] = field(default_factory=list)
    cmds: list[CommandNode] = field(default_factory=list)

    def __str__(self) -> str:
        s = ""
        if self.decl:
            s = ", ".join(str(v) for v in self.decl) + (" = " if self.is_assign else " := ")
        return s + " | ".join(str(c) for c in self.cmds)


@dataclass(eq=False)
class ChainNode(Node):
    node: Node
    fields: list[str]

    def __str__(self) -> str:
        base = f"({self.node})" if isinstance(self.node, PipeNode) else str(self.node)
        return base + "".join("." + f for f in self.fields)


@dataclass(eq=False)
class ActionNode(Node):
    pipe: PipeNode

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


@dataclass(eq=False)
class BranchNode(Node):
    pipe: PipeNode
    list: ListNode
    else_list: ListNode | None
    keyword = ""

    def __str__(self) -> str:
        s = "{{" + self.keyword + " " + str(self.pipe) + "}}" + str(self.list)
        if self.else_list is not None:
            s += "{{else}}" + str(self.else_list)
        return s + "{{end}}"


class IfNode(BranchNode):
    keyword = "if"


class RangeNode(BranchNode):
    keyword = "range"


class WithNode(BranchNode):
    keyword = "with"


@dataclass(eq=False)
class BreakNode(Node):
    def __str__(self) -> str:
        return "{{break}}"


@dataclass(eq=False)
class ContinueNode(Node):
    def __str__(self) -> str:
        return "{{continue}}"


@dataclass(eq=False)
class TemplateNode(Node):
    name: str
    pipe: PipeNode | None

    def __str__(self) -> str:
        if self.pipe is None:
            return "{{template " + go_quote(self.name) + "}}"
        return "{{template " + go_quote(self.name) + " " + str(self.pipe) + "}}"


@dataclass(eq=False)
class _EndNode(Node):
    def __str__(self) -> str:
        return "{{end}}"


@dataclass(eq=False)
class _ElseNode(Node):
    def __str__(self) -> str:
        return "{{else}}"


def is_empty_tree(n: Node | None) -> bool:
    if n is None:
        return True
    if isinstance(n, ListNode):
        return all(is_empty_tree(c) for c in n.nodes)
    if isinstance(n, TextNode):
        return n.text.strip(" \t\r\n\v\f") == ""
    return False


# -- literals ------------------------------------------------------------------------------------
_SIMPLE_ESC = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def _unquote_body(body: str, quote: str) -> str:
    """Interpret Go escape sequences in the body of a quoted string or char literal."""
    out = bytearray()
    i = 0
    n = len(body)
    while i < n:
        c = body[i]
        if c != "\\":
            if c == quote or c == "\n":
                raise ValueError("invalid syntax")
            out += c.encode("utf-8", "surrogatepass")
            i += 1
            continue
        if i + 1 >= n:
            raise ValueError("invalid syntax")
        e = body[i + 1]
        i += 2
        if e in _SIMPLE_ESC:
            out += _SIMPLE_ESC[e].encode()
        elif e == quote:
            out += e.encode()
        elif e in "xuU":
            size = {"x": 2, "u": 4, "U": 8}[e]
            hexs = body[i : i + size]
            if len(hexs) != size or any(h not in "0123456789abcdefABCDEF" for h in hexs):
                raise ValueError("invalid syntax")
            i += size
            v = int(hexs, 16)
            if e == "x":
                out.append(v)
            else:
                if v > 0x10FFFF or 0xD800 <= v <= 0xDFFF:
                    raise ValueError("invalid syntax")
                out += chr(v).encode()
        elif e in "01234567":
            octs = body[i - 1 : i + 2]
            if len(octs) != 3 or any(h not in "01234567" for h in octs):
                raise ValueError("invalid syntax")
            v = int(octs, 8)
            if v > 255:
                raise ValueError("invalid syntax")
            i += 2
            out.append(v)
        else:
            raise ValueError("invalid syntax")
    return out.decode("utf-8", "replace")


def unquote_string(text: str) -> str:
    """strconv.Unquote for "..." and `...` literals (raw strings lose their \\r, as in Go)."""
    if len(text) >= 2 and text[0] == text[-1] == "`":
        return text[1:-1].replace("\r", "")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return _unquote_body(text[1:-1], '"')
    raise ValueError("invalid syntax")


def _parse_go_int(text: str) -> int | None:
    s = text
    neg = False
    if s[:1] in "+-":
        neg = s[0] == "-"
        s = s[1:]
    try:
        low = s.lower()
        if low.startswith(("0x", "0o", "0b")):
            v = int(s, 0)
        elif len(s) > 1 and s[0] == "0" and s.replace("_", "").isdigit():
            v = int(s[1:].lstrip("_") or "0", 8)  # legacy octal: 017
        elif s.replace("_", "").isdigit():
            v = int(s, 10)
        else:
            return None
    except ValueError:
        return None
    return -v if neg else v


def parse_number(text: str, is_char: bool) -> tuple[Any, str]:
    """The value Go's idealConstant gives a number literal, plus a kind: int, float, or overflow."""
    if is_char:
        body = text[1:-1]
        if not body:
            raise ValueError(f"malformed character constant: {text}")
        s = _unquote_body(body, "'")
        if len(s) != 1:
            raise ValueError(f"malformed character constant: {text}")
        return ord(s), "int"
    iv = _parse_go_int(text)
    is_hex = text.lower().lstrip("+-").startswith("0x")
    if iv is not None and -(1 << 63) <= iv < (1 << 63):
        return iv, "int"
    if iv is not None and 0 <= iv < (1 << 64):
        return None, "overflow"  # fits uint64 only: Go fails it at run time
    clean = text.replace("_", "")
    try:
        fv = float.fromhex(clean) if is_hex else float(clean)
    except ValueError:
        raise ValueError(f"illegal number syntax: {go_quote(text)}") from None
    if not any(c in text for c in ".eEpP"):
        raise ValueError(f"integer overflow: {go_quote(text)}")
    return fv, "float"


# -- parser --------------------------------------------------------------------------------------
class Parser:
    def __init__(self, src: str, funcs: set[str] | frozenset[str], name: str = ""):
        self.items = lex(src)
        self.i = 0
        self.funcs = funcs
        self.name = name
        self.trees: dict[str, ListNode] = {}
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.action_line = 0
        self.last: Item = self.items[0]
        self.depth = 0

    # -- token stream --------------------------------------------------------------------------
    def next(self) -> Item:
        it = self.items[self.i]
        if self.i < len(self.items) - 1:
            self.i += 1
        self.last = it
        return it

    def backup(self) -> None:
        self.i -= 1

    def peek(self) -> Item:
        it = self.items[self.i]
        self.last = it
        return it

    def next_non_space(self) -> Item:
        while True:
            it = self.next()
            if it.typ != T.SPACE:
                return it

    def peek_non_space(self) -> Item:
        while self.items[self.i].typ == T.SPACE:
            self.i += 1
        return self.peek()

    # -- errors --------------------------------------------------------------------------------
    def errorf(self, msg: str):
        raise TemplateError(f"template: {self.name}:{self.last.line}: {msg}")

    def unexpected(self, tok: Item, context: str):
        if tok.typ == T.ERROR:
            extra = ""
            if self.action_line and self.action_line != tok.line:
                extra = f" in action started at {self.name}:{self.action_line}"
                if tok.val.endswith(" action"):
                    extra = extra[len(" in action") :]
            self.errorf(f"{tok}{extra}")
        self.errorf(f"unexpected {tok} in {context}")

    def expect(self, typ: T, context: str) -> Item:
        tok = self.next_non_space()
        if tok.typ != typ:
            self.unexpected(tok, context)
        return tok

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            self.errorf(f"template nesting too deep (more than {MAX_NESTING} levels)")

    # -- grammar -------------------------------------------------------------------------------
    def parse(self) -> tuple[ListNode, dict[str, ListNode]]:
        root = ListNode(0, 1)
        while self.peek().typ != T.EOF:
            if self.peek().typ == T.LEFT_DELIM:
                save = self.i
                self.next()
                if self.next_non_space().typ == T.DEFINE:
                    self.parse_definition()
                    continue
                self.i = save
            n = self.text_or_action()
            if isinstance(n, (_EndNode, _ElseNode)):
                self.errorf(f"unexpected {n}")
            root.nodes.append(n)
        self.add_tree(self.name, root)
        return root, self.trees

    def add_tree(self, name: str, root: ListNode) -> None:
        existing = self.trees.get(name)
        if existing is None or is_empty_tree(existing):
            self.trees[name] = root
        elif not is_empty_tree(root):
            self.errorf(f"template: multiple definition of template {go_quote(name)}")

    def _sub_tree(self, context: str) -> ListNode:
        """Parse a define/block body: a fresh variable scope, outside any range."""
        saved_vars, saved_range = self.vars, self.range_depth
        self.vars, self.range_depth = ["$"], 0
        self.enter()
        try:
            body, end = self.item_list()
            if not isinstance(end, _EndNode):
                self.errorf(f"unexpected {end} in {context}")
            return body
        finally:
            self.depth -= 1
            self.vars, self.range_depth = saved_vars, saved_range

    def parse_definition(self) -> None:
        context = "define clause"
        tok = self.next_non_space()
        name = self.parse_template_name(tok, context)
        self.expect(T.RIGHT_DELIM, context)
        self.add_tree(name, self._sub_tree(context))

    def item_list(self) -> tuple[ListNode, Node]:
        first = self.peek_non_space()
        lst = ListNode(first.pos, first.line)
        while self.peek_non_space().typ != T.EOF:
            n = self.text_or_action()
            if isinstance(n, (_EndNode, _ElseNode)):
                return lst, n
            lst.nodes.append(n)
        self.errorf("unexpected EOF")
        raise AssertionError  # unreachable

    def text_or_action(self) -> Node:
        tok = self.next_non_space()
        if tok.typ == T.TEXT:
            return TextNode(tok.pos, tok.line, tok.val)
        if tok.typ == T.LEFT_DELIM:
            saved = self.action_line
            self.action_line = tok.line
            try:
                return self.action()
            finally:
                self.action_line = saved
        self.unexpected(tok, "input")
        raise AssertionError

    def action(self) -> Node:
        tok = self.next_non_space()
        t = tok.typ
        if t == T.BLOCK:
            return self.block_control()
        if t == T.BREAK:
            return self.loop_control(tok, "break", BreakNode)
        if t == T.CONTINUE:
            return self.loop_control(tok, "continue", ContinueNode)
        if t == T.ELSE:
            return self.else_control()
        if t == T.END:
            end = self.expect(T.RIGHT_DELIM, "end")
            return _EndNode(end.pos, end.line)
        if t == T.IF:
            return IfNode(*self.parse_control("if"))
        if t == T.RANGE:
            return RangeNode(*self.parse_control("range"))
        if t == T.TEMPLATE:
            return self.template_control()
        if t == T.WITH:
            return WithNode(*self.parse_control("with"))
        self.backup()
        tok = self.peek()
        return ActionNode(tok.pos, tok.line, self.pipeline("command", T.RIGHT_DELIM))

    def loop_control(self, kw: Item, name: str, cls: type) -> Node:
        tok = self.next_non_space()
        if tok.typ != T.RIGHT_DELIM:
            self.unexpected(tok, "{{" + name + "}}")
        if self.range_depth == 0:
            self.errorf("{{" + name + "}} outside {{range}}")
        return cls(kw.pos, kw.line)

    def else_control(self) -> Node:
        peek = self.peek_non_space()
        if peek.typ in (T.IF, T.WITH):  # "else if" / "else with": the keyword stays pending
            return _ElseNode(peek.pos, peek.line)
        tok = self.expect(T.RIGHT_DELIM, "else")
        return _ElseNode(tok.pos, tok.line)

    def parse_control(self, context: str) -> tuple[int, int, PipeNode, ListNode, ListNode | None]:
        nvars = len(self.vars)
        self.enter()
        try:
            pipe = self.pipeline(context, T.RIGHT_DELIM)
            if context == "range":
                self.range_depth += 1
            lst, nxt = self.item_list()
            if context == "range":
                self.range_depth -= 1
            else_list = None
            if isinstance(nxt, _ElseNode):
                if context == "if" and self.peek().typ == T.IF:
                    self.next()
                    else_list = ListNode(nxt.pos, nxt.line, [IfNode(*self.parse_control("if"))])
                elif context == "with" and self.peek().typ == T.WITH:
                    self.next()
                    else_list = ListNode(nxt.pos, nxt.line, [WithNode(*self.parse_control("with"))])
                else:
                    else_list, end = self.item_list()
                    if not isinstance(end, _EndNode):
                        self.errorf(f"expected end; found {end}")
            return pipe.pos, pipe.line, pipe, lst, else_list
        finally:
            self.depth -= 1
            del self.vars[nvars:]

    def parse_template_name(self, tok: Item, context: str) -> str:
        if tok.typ in (T.STRING, T.RAW_STRING):
            try:
                return unquote_string(tok.val)
            except ValueError as e:
                self.errorf(str(e))
        self.unexpected(tok, context)
        raise AssertionError

    def template_control(self) -> Node:
        context = "template clause"
        tok = self.next_non_space()
        name = self.parse_template_name(tok, context)
        pipe = None
        if self.next_non_space().typ != T.RIGHT_DELIM:
            self.backup()
            pipe = self.pipeline(context, T.RIGHT_DELIM)
        return TemplateNode(tok.pos, tok.line, name, pipe)

    def block_control(self) -> Node:
        context = "block clause"
        tok = self.next_non_space()
        name = self.parse_template_name(tok, context)
        pipe = self.pipeline(context, T.RIGHT_DELIM)
        self.add_tree(name, self._sub_tree(context))
        return TemplateNode(tok.pos, tok.line, name, pipe)

    def pipeline(self, context: str, end: T) -> PipeNode:
        first = self.peek_non_space()
        pipe = PipeNode(first.pos, first.line)
        while True:  # declarations; loops only for "range $i, $v :="
            v = self.peek_non_space()
            if v.typ != T.VARIABLE:
                break
            vi = self.i
            self.next()
            nxt = self.peek_non_space()
            if nxt.typ in (T.ASSIGN, T.DECLARE):
                pipe.is_assign = nxt.typ == T.ASSIGN
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, v.line, [v.val]))
                self.vars.append(v.val)
            elif nxt.typ == T.CHAR and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, v.line, [v.val]))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().typ in (T.VARIABLE, T.RIGHT_DELIM, T.RIGHT_PAREN):
                        continue
                    self.errorf("range can only initialize variables")
                self.errorf(f"too many declarations in {context}")
            else:
                self.i = vi  # not a declaration: the variable is an operand
            break
        while True:
            tok = self.next_non_space()
            if tok.typ == end:
                self.check_pipeline(pipe, context)
                return pipe
            if tok.typ in (
                T.BOOL,
                T.CHAR_CONSTANT,
                T.DOT,
                T.FIELD,
                T.IDENTIFIER,
                T.NUMBER,
                T.NIL,
                T.RAW_STRING,
                T.STRING,
                T.VARIABLE,
                T.LEFT_PAREN,
            ):
                self.backup()
                pipe.cmds.append(self.command())
            else:
                self.unexpected(tok, context)

    def check_pipeline(self, pipe: PipeNode, context: str) -> None:
        if not pipe.cmds:
            self.errorf(f"missing value for {context}")
        for i, c in enumerate(pipe.cmds[1:]):
            if isinstance(c.args[0], (BoolNode, DotNode, NilNode, NumberNode, StringNode)):
                self.errorf(f"non executable command in pipeline stage {i + 2}")

    def command(self) -> CommandNode:
        first = self.peek_non_space()
        cmd = CommandNode(first.pos, first.line)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.typ == T.SPACE:
                continue
            if tok.typ in (T.RIGHT_DELIM, T.RIGHT_PAREN):
                self.backup()
            elif tok.typ != T.PIPE:
                self.unexpected(tok, "operand")
            break
        if not cmd.args:
            self.errorf("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().typ == T.FIELD:
            chain_tok = self.peek()
            fields: list[str] = []
            while self.peek().typ == T.FIELD:
                fields.append(self.next().val[1:])
            if isinstance(node, FieldNode):
                return FieldNode(chain_tok.pos, chain_tok.line, node.ident + fields)
            if isinstance(node, VariableNode):
                return VariableNode(chain_tok.pos, chain_tok.line, node.ident + fields)
            if isinstance(node, (BoolNode, StringNode, NumberNode, NilNode, DotNode)):
                self.errorf(f"unexpected . after term {go_quote(str(node))}")
            return ChainNode(chain_tok.pos, chain_tok.line, node, fields)
        return node

    def term(self) -> Node | None:
        tok = self.next_non_space()
        t = tok.typ
        if t == T.IDENTIFIER:
            if tok.val not in self.funcs:
                self.errorf(f"function {go_quote(tok.val)} not defined")
            return IdentifierNode(tok.pos, tok.line, tok.val)
        if t == T.DOT:
            return DotNode(tok.pos, tok.line)
        if t == T.NIL:
            return NilNode(tok.pos, tok.line)
        if t == T.VARIABLE:
            if tok.val not in self.vars:
                self.errorf(f"undefined variable {go_quote(tok.val)}")
            return VariableNode(tok.pos, tok.line, [tok.val])
        if t == T.FIELD:
            return FieldNode(tok.pos, tok.line, [tok.val[1:]])
        if t == T.BOOL:
            return BoolNode(tok.pos, tok.line, tok.val == "true")
        if t in (T.NUMBER, T.CHAR_CONSTANT):
            try:
                value, kind = parse_number(tok.val, t == T.CHAR_CONSTANT)
            except ValueError as e:
                self.errorf(str(e))
            return NumberNode(tok.pos, tok.line, tok.val, value if kind != "overflow" else None)
        if t == T.LEFT_PAREN:
            self.enter()
            try:
                return self.pipeline("parenthesized pipeline", T.RIGHT_PAREN)
            finally:
                self.depth -= 1
        if t in (T.STRING, T.RAW_STRING):
            try:
                return StringNode(tok.pos, tok.line, tok.val, unquote_string(tok.val))
            except ValueError as e:
                self.errorf(str(e))
        self.backup()
        return None


def parse(src: str, funcs: set[str] | frozenset[str]) -> tuple[ListNode, dict[str, ListNode]]:
    """Parse `src`; return the main tree and every named tree (main one under "")."""
    return Parser(src, funcs).parse()
