"""Executor for parsed Go templates, a port of `text/template/exec.go`.

Semantics follow Go with `missingkey=zero`: a missing map key is a nil value (printed as
`<no value>`), a missing struct field is an error, variables are lexically scoped and
`$x = v` assigns the nearest one. Three budgets keep hostile templates harmless: output
size, number of evaluation steps, and depth of `template` calls; each raises TemplateError.
"""

from __future__ import annotations

import bisect
from typing import Any

from ._gofmt import fmt_v
from ._goparse import (
    ActionNode,
    BoolNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    IfNode,
    ListNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    RangeNode,
    StringNode,
    TemplateNode,
    TextNode,
    VariableNode,
    WithNode,
)
from ._govalues import FuncError, GoFunc, GoMap, GoStruct, go_type_name, methods_of, sorted_keys, truth
from .errors import TemplateError

MISSING: Any = object()  # "no final argument" in a pipeline


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Executor:
    def __init__(
        self,
        src: str,
        trees: dict[str, ListNode],
        funcs: dict[str, GoFunc],
        *,
        max_output: int,
        max_steps: int,
        max_depth: int,
    ):
        self.src = src
        self.trees = trees
        self.funcs = funcs
        self.max_output = max_output
        self.max_steps = max_steps
        self.max_depth = max_depth
        self.out: list[str] = []
        self.size = 0
        self.steps = 0
        self.depth = 0
        self.name = ""
        self.node: Node | None = None
        self.vars: list[list[Any]] = []
        self._newlines: list[int] | None = None

    # -- entry ---------------------------------------------------------------------------------
    def run(self, root: ListNode, data: Any) -> str:
        self.vars = [["$", data]]
        try:
            self.walk(data, root)
        except RecursionError:
            raise TemplateError("template: exceeded maximum template depth") from None
        return "".join(self.out)

    # -- errors and budgets --------------------------------------------------------------------
    def errorf(self, msg: str):
        node = self.node
        if node is None:
            raise TemplateError(f"template: {self.name}: {msg}")
        if self._newlines is None:
            self._newlines = [i for i, c in enumerate(self.src) if c == "\n"]
        k = bisect.bisect_left(self._newlines, node.pos)
        col = node.pos - (self._newlines[k - 1] + 1) if k else node.pos
        ctx = str(node)
        if len(ctx) > 20:
            ctx = ctx[:20] + "..."
        raise TemplateError(f'template: :{k + 1}:{col}: executing "{self.name}" at <{ctx}>: {msg}')

    def tick(self) -> None:
        self.steps += 1
        if self.steps > self.max_steps:
            raise TemplateError(f"template: execution stopped after {self.max_steps} steps")

    def write(self, s: str) -> None:
        self.size += len(s)
        if self.size > self.max_output:
            raise TemplateError(f"template: output exceeds {self.max_output} characters")
        self.out.append(s)

    # -- variables -----------------------------------------------------------------------------
    def var_value(self, name: str) -> Any:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                return self.vars[i][1]
        self.errorf(f"undefined variable: {name}")

    def set_var(self, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i][1] = value
                return
        self.errorf(f"undefined variable: {name}")

    # -- walking -------------------------------------------------------------------------------
    def walk(self, dot: Any, node: Node) -> None:
        self.tick()
        t = type(node)
        if t is TextNode:
            self.write(node.text)  # type: ignore[attr-defined]
        elif t is ListNode:
            for n in node.nodes:  # type: ignore[attr-defined]
                self.walk(dot, n)
        elif t is ActionNode:
            self.node = node
            val = self.eval_pipeline(dot, node.pipe)  # type: ignore[attr-defined]
            if not node.pipe.decl:  # type: ignore[attr-defined]
                self.node = node
                self.write("<no value>" if val is None else fmt_v(val))
        elif t is IfNode or t is WithNode:
            self.walk_if_or_with(dot, node, t is WithNode)  # type: ignore[arg-type]
        elif t is RangeNode:
            self.walk_range(dot, node)  # type: ignore[arg-type]
        elif t is TemplateNode:
            self.walk_template(dot, node)  # type: ignore[arg-type]
        elif t is BreakNode:
            raise _Break
        elif t is ContinueNode:
            raise _Continue
        else:
            self.node = node
            self.errorf(f"unknown node: {node}")

    def walk_if_or_with(self, dot: Any, node: IfNode, is_with: bool) -> None:
        mark = len(self.vars)
        try:
            val = self.eval_pipeline(dot, node.pipe)
            if truth(val):
                self.walk(val if is_with else dot, node.list)
            elif node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            del self.vars[mark:]

    def walk_range(self, dot: Any, r: RangeNode) -> None:
        self.node = r
        mark = len(self.vars)
        try:
            val = self.eval_pipeline(dot, r.pipe)
            body_mark = len(self.vars)
            decl = r.pipe.decl

            def one(index: Any, elem: Any) -> None:
                if decl:
                    if r.pipe.is_assign:
                        self.set_var(decl[0].ident[0], index if len(decl) > 1 else elem)
                    else:
                        self.vars[-1][1] = elem
                if len(decl) > 1:
                    if r.pipe.is_assign:
                        self.set_var(decl[1].ident[0], elem)
                    else:
                        self.vars[-2][1] = index
                try:
                    self.walk(elem, r.list)
                except _Continue:
                    pass
                finally:
                    del self.vars[body_mark:]

            ran = False
            try:
                if isinstance(val, (list, tuple)):
                    for i, e in enumerate(list(val)):
                        ran = True
                        one(i, e)
                elif isinstance(val, dict):
                    for k in sorted_keys(val):
                        ran = True
                        one(k, val[k])
                elif isinstance(val, int) and not isinstance(val, bool):
                    if len(decl) > 1:
                        self.node = r
                        self.errorf(f"can't use {val} to iterate over more than one variable")
                    for i in range(val):
                        ran = True
                        one(i, i)
                elif val is not None:
                    self.node = r
                    self.errorf(f"range can't iterate over {fmt_v(val)}")
            except _Break:
                return
            if not ran and r.else_list is not None:
                self.walk(dot, r.else_list)
        finally:
            del self.vars[mark:]

    def walk_template(self, dot: Any, t: TemplateNode) -> None:
        self.node = t
        body = self.trees.get(t.name)
        if body is None:
            self.errorf(f'template "{t.name}" not defined')
        if self.depth >= self.max_depth:
            self.errorf(f"exceeded maximum template depth ({self.max_depth})")
        new_dot = self.eval_pipeline(dot, t.pipe) if t.pipe is not None else None
        saved = self.vars, self.name
        self.vars, self.name = [["$", new_dot]], t.name
        self.depth += 1
        try:
            self.walk(new_dot, body)
        finally:
            self.vars, self.name = saved
            self.depth -= 1

    # -- evaluation ----------------------------------------------------------------------------
    def eval_pipeline(self, dot: Any, pipe: PipeNode) -> Any:
        self.node = pipe
        value = MISSING
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
        for var in pipe.decl:
            if pipe.is_assign:
                self.set_var(var.ident[0], value)
            else:
                self.vars.append([var.ident[0], value])
        return value

    def not_a_function(self, args: list[Node] | None, final: Any) -> None:
        if (args is not None and len(args) > 1) or final is not MISSING:
            assert args is not None
            self.errorf(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: Any, cmd: CommandNode, final: Any) -> Any:
        self.tick()
        first = cmd.args[0]
        t = type(first)
        if t is FieldNode:
            return self.eval_field_node(dot, first, cmd.args, final)  # type: ignore[arg-type]
        if t is ChainNode:
            return self.eval_chain_node(dot, first, cmd.args, final)  # type: ignore[arg-type]
        if t is IdentifierNode:
            return self.eval_function(dot, first, cmd, cmd.args, final)  # type: ignore[arg-type]
        if t is PipeNode:
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)  # type: ignore[arg-type]
        if t is VariableNode:
            return self.eval_variable_node(dot, first, cmd.args, final)  # type: ignore[arg-type]
        self.node = first
        self.not_a_function(cmd.args, final)
        if t is BoolNode:
            return first.value  # type: ignore[attr-defined]
        if t is DotNode:
            return dot
        if t is NilNode:
            self.errorf("nil is not a command")
        if t is NumberNode:
            return self.ideal_constant(first)  # type: ignore[arg-type]
        if t is StringNode:
            return first.text  # type: ignore[attr-defined]
        self.errorf(f"can't evaluate command {first}")

    def ideal_constant(self, n: NumberNode) -> Any:
        if n.value is None:
            self.node = n
            self.errorf(f"{n.text} overflows int")
        return n.value

    def eval_field_node(self, dot: Any, f: FieldNode, args: list[Node] | None, final: Any) -> Any:
        self.node = f
        return self.eval_field_chain(dot, dot, f, f.ident, args, final, strict=True)

    def eval_chain_node(self, dot: Any, c: ChainNode, args: list[Node] | None, final: Any) -> Any:
        self.node = c
        if isinstance(c.node, NilNode):
            self.errorf(f"indirection through explicit nil in {c}")
        receiver = self.eval_arg(dot, c.node, value_arg=False)
        return self.eval_field_chain(dot, receiver, c, c.fields, args, final, strict=False)

    def eval_variable_node(self, dot: Any, v: VariableNode, args: list[Node] | None, final: Any) -> Any:
        self.node = v
        value = self.var_value(v.ident[0])
        if len(v.ident) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, v, v.ident[1:], args, final, strict=False)

    def eval_field_chain(
        self,
        dot: Any,
        receiver: Any,
        node: Node,
        ident: list[str],
        args: list[Node] | None,
        final: Any,
        *,
        strict: bool,
    ) -> Any:
        # A nil held in a variable or produced by a pipeline is an "invalid" value in Go:
        # fields of it are silently nil. A nil met while walking fields (a missing map
        # key, a nil element) is a nil interface: going further is an error.
        n = len(ident)
        for i, name in enumerate(ident):
            last = i == n - 1
            if receiver is None:
                if not strict:
                    return None
                self.node = node
                self.errorf(f"nil pointer evaluating interface {{}}.{name}")
            receiver = self.eval_field(
                dot, name, node, args if last else None, final if last else MISSING, receiver
            )
            strict = True
        return receiver

    def eval_field(
        self, dot: Any, name: str, node: Node, args: list[Node] | None, final: Any, receiver: Any
    ) -> Any:
        method = methods_of(receiver).get(name)
        if method is not None:
            return self.eval_call(dot, method, node, name, args, final, receiver=receiver)
        has_args = (args is not None and len(args) > 1) or final is not MISSING
        self.node = node
        if isinstance(receiver, GoStruct):
            if name in receiver.fields:
                if has_args:
                    self.errorf(f"{name} has arguments but cannot be invoked as function")
                return receiver.get(name)
        elif isinstance(receiver, dict):
            if has_args:
                self.errorf(f"{name} is not a method but has arguments")
            if name in receiver:
                return receiver[name]
            return type(receiver).zero if isinstance(receiver, GoMap) else None
        self.errorf(f"can't evaluate field {name} in type {go_type_name(receiver)}")

    def eval_function(
        self, dot: Any, ident: IdentifierNode, node: Node, args: list[Node] | None, final: Any
    ) -> Any:
        self.node = ident
        fn = self.funcs.get(ident.name)
        if fn is None:
            self.errorf(f'"{ident.name}" is not a defined function')
        return self.eval_call(dot, fn, node, ident.name, args, final)

    def eval_call(
        self,
        dot: Any,
        fn: GoFunc,
        node: Node,
        name: str,
        args: list[Node] | None,
        final: Any,
        receiver: Any = MISSING,
    ) -> Any:
        argnodes = args[1:] if args else []
        num_in = len(argnodes) + (0 if final is MISSING else 1)
        self.node = node
        if fn.variadic:
            if num_in < fn.nfixed:
                self.errorf(f"wrong number of args for {name}: want at least {fn.nfixed} got {len(argnodes)}")
        elif num_in != fn.nfixed:
            self.errorf(f"wrong number of args for {name}: want {fn.nfixed} got {num_in}")
        if fn.lazy:  # and / or: stop at the first operand that decides the result
            is_or = name == "or"
            v: Any = None
            for a in argnodes:
                v = self.eval_arg(dot, a, value_arg=True)
                if truth(v) == is_or:
                    return v
            return final if final is not MISSING else v
        argv = [self.eval_arg(dot, a, value_arg=fn.value_args) for a in argnodes]
        if final is not MISSING:
            argv.append(final)
        if fn.string_args:
            for i, a in enumerate(argv if fn.string_args == "all" else argv[:1]):
                if not isinstance(a, str):
                    self.node = argnodes[i] if i < len(argnodes) else node
                    self.errorf(f"wrong type for value; expected string; got {go_type_name(a)}")
        self.node = node
        try:
            if receiver is not MISSING:
                return fn.impl(receiver, *argv)
            return fn.impl(*argv)
        except FuncError as e:
            self.errorf(f"error calling {name}: {e}")

    def eval_arg(self, dot: Any, n: Node, *, value_arg: bool) -> Any:
        self.node = n
        t = type(n)
        if t is DotNode:
            return dot
        if t is NilNode:
            if value_arg:
                self.errorf("cannot assign nil to reflect.Value")
            return None
        if t is FieldNode:
            return self.eval_field_node(dot, n, [n], MISSING)  # type: ignore[arg-type]
        if t is VariableNode:
            return self.eval_variable_node(dot, n, None, MISSING)  # type: ignore[arg-type]
        if t is PipeNode:
            return self.eval_pipeline(dot, n)  # type: ignore[arg-type]
        if t is IdentifierNode:
            return self.eval_function(dot, n, n, None, MISSING)  # type: ignore[arg-type]
        if t is ChainNode:
            return self.eval_chain_node(dot, n, None, MISSING)  # type: ignore[arg-type]
        if t is BoolNode:
            return n.value  # type: ignore[attr-defined]
        if t is NumberNode:
            return self.ideal_constant(n)  # type: ignore[arg-type]
        if t is StringNode:
            return n.text  # type: ignore[attr-defined]
        self.errorf(f"can't handle {n} for arg")
