"""An interpreter for Go's `text/template`, as Ollama uses it for model TEMPLATE layers.

    tmpl = Template.parse("{{ range .Messages }}{{ .Role }}: {{ .Content }}\\n{{ end }}")
    tmpl.execute({"Messages": [...]})
    tmpl.references("Messages")  # True: decided from the parse tree, as Ollama's Vars() does

Covered: actions, trim markers, comments, pipelines, variables (`:=`, `=`, `$`), if/else
if/else, range (lists, maps in key order, ints, `$i, $v :=`, else, break/continue),
with/else with, define/template/block, parenthesised pipelines, field chains, Go literals,
the predefined functions (and or not len index slice eq ne lt le gt ge print printf println
html js urlquery call) and Ollama's json, currentDate, yesterdayDate, toTypeScriptType.
Options follow Ollama: `missingkey=zero`. Parse and execution failures raise TemplateError
with Go's message format. Execution is bounded in output size, steps and template-call depth.
"""

from __future__ import annotations

from typing import Any

from ._goexec import Executor
from ._gofuncs import BUILTINS
from ._goparse import (
    ActionNode,
    BranchNode,
    FieldNode,
    ListNode,
    Node,
    PipeNode,
    TemplateNode,
    VariableNode,
    parse,
)
from ._govalues import GoFunc
from ._views import OLLAMA_FUNCS
from .errors import TemplateError

DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024  # characters
DEFAULT_MAX_STEPS = 2_000_000  # nodes walked + commands evaluated
MAX_TEMPLATE_DEPTH = 64  # nested {{template}} calls (Go allows 100000; Python's stack does not)

FUNCS: dict[str, GoFunc] = {**BUILTINS, **OLLAMA_FUNCS}

__all__ = ["FUNCS", "Template", "TemplateError", "identifiers"]


class Template:
    """A parsed template: the main tree plus every `define`d / `block` tree."""

    __slots__ = ("_idents", "funcs", "root", "source", "trees")

    def __init__(self, source: str, root: ListNode, trees: dict[str, ListNode], funcs: dict[str, GoFunc]):
        self.source = source
        self.root = root
        self.trees = trees
        self.funcs = funcs
        self._idents: frozenset[str] | None = None

    @classmethod
    def parse(cls, source: str, funcs: dict[str, GoFunc] | None = None) -> Template:
        funcs = FUNCS if funcs is None else funcs
        try:
            root, trees = parse(source, frozenset(funcs))
        except RecursionError:
            raise TemplateError("template: :1: template nesting too deep") from None
        return cls(source, root, trees, funcs)

    def with_root(self, root: ListNode) -> Template:
        """The same template (defines, functions) with a different main tree."""
        trees = dict(self.trees)
        trees[""] = root
        return Template(self.source, root, trees, self.funcs)

    def execute(
        self,
        data: Any,
        *,
        max_output: int = DEFAULT_MAX_OUTPUT,
        max_steps: int = DEFAULT_MAX_STEPS,
        max_depth: int = MAX_TEMPLATE_DEPTH,
    ) -> str:
        ex = Executor(
            self.source,
            self.trees,
            self.funcs,
            max_output=max_output,
            max_steps=max_steps,
            max_depth=max_depth,
        )
        return ex.run(self.root, data)

    def identifiers(self) -> frozenset[str]:
        """Lower-cased field and variable names used anywhere (Ollama's `Template.Vars()`)."""
        if self._idents is None:
            names: set[str] = set()
            for tree in self.trees.values():
                names.update(identifiers(tree))
            self._idents = frozenset(n.lower() for n in names)
        return self._idents

    def references(self, name: str) -> bool:
        """Whether the template uses a field or variable `name` (case-insensitive, `.`/`$` optional)."""
        return name.lstrip(".").lower() in self.identifiers()

    def __repr__(self) -> str:
        return f"Template({self.source[:40]!r}...)"


def identifiers(n: Node | None) -> list[str]:
    """Field/variable identifiers of a subtree, walked exactly as Ollama's `Identifiers`.

    Like Ollama it does not look inside chain nodes (`(x).Field`) or parenthesised
    arguments' chains, so mode decisions (messages vs legacy) match Ollama's.
    """
    out: list[str] = []
    stack: list[Any] = [n]
    while stack:
        x = stack.pop()
        if x is None:
            continue
        if isinstance(x, ListNode):
            stack.extend(reversed(x.nodes))
        elif isinstance(x, (ActionNode, TemplateNode)):
            stack.append(x.pipe)
        elif isinstance(x, BranchNode):
            stack.extend([x.else_list, x.list, x.pipe])
        elif isinstance(x, PipeNode):
            for c in reversed(x.cmds):
                stack.extend(reversed(c.args))
        elif isinstance(x, (FieldNode, VariableNode)):
            out.extend(x.ident)
    return out
