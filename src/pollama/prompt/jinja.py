"""Rendering of a GGUF `tokenizer.chat_template` (Hugging Face jinja) in a sandbox.

Conventions are transformers' `apply_chat_template`: ImmutableSandboxedEnvironment with
trim_blocks, lstrip_blocks and loop controls; `tojson` that does not HTML-escape and takes
indent / separators / sort_keys; `raise_exception`, `strftime_now`; `{% generation %}`
passed through; variables `messages`, `tools`, `documents`, `add_generation_prompt`,
`bos_token`, `eos_token`, plus `enable_thinking` / `reasoning_effort` from `think`.

Hostile templates are contained: the jinja sandbox rejects unsafe attribute access and
we add bounds it lacks: total output, the size of any value built by `+ * ** % ~`, a
filter or a method call, integer arguments, and the total number of loop iterations.
Every failure is raised as JinjaTemplateError (a TemplateError).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, ClassVar

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import TemplateError

MAX_OUTPUT = 16 * 1024 * 1024  # characters of rendered prompt
MAX_VALUE = 4 * 1024 * 1024  # length of any single string/list built while rendering
MAX_INT_ARG = 1_000_000  # integers passed to calls (widths, repeat counts)
MAX_ITERATIONS = 1_000_000  # loop iterations per render

__all__ = ["JinjaTemplateError", "compile_template", "render_jinja_chat"]


class JinjaTemplateError(TemplateError):
    """A chat template failed to compile, raised an error, or was stopped by the sandbox."""


class _Budget:
    __slots__ = ("left",)

    def __init__(self, n: int):
        self.left = n

    def iterate(self, it: Iterable[Any]) -> Iterator[Any]:
        for x in it:
            self.left -= 1
            if self.left < 0:
                raise jinja2.exceptions.SecurityError(f"more than {MAX_ITERATIONS} loop iterations")
            yield x


def _check_size(v: Any) -> Any:
    if isinstance(v, (str, list, tuple, dict)) and len(v) > MAX_VALUE:
        raise jinja2.exceptions.SecurityError(f"value longer than {MAX_VALUE}")
    return v


_BIG_NUMBER = re.compile(r"\d{7,}")


def _check_format(fmt: Any) -> None:
    # "%999999999s" or "{:>999999999}" would allocate before any size check could run
    if isinstance(fmt, str) and _BIG_NUMBER.search(fmt):
        raise jinja2.exceptions.SecurityError("format width too large")


def _check_ints(values: Iterable[Any]) -> None:
    for v in values:
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_INT_ARG:
            raise jinja2.exceptions.SecurityError(f"integer argument {v} too large")
        if isinstance(v, tuple):
            _check_ints(v)


def _concat(items: Iterable[Any]) -> str:
    return _check_size("".join(map(str, items)))


class _CodeGenerator(CodeGenerator):
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # `a ~ b` goes through a size check instead of a bare join.
        self.write("environment.pollama_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Generation(Extension):
    """transformers' `{% generation %}...{% endgeneration %}`: rendered as its body."""

    tags: ClassVar[set[str]] = {"generation"}

    def parse(self, parser: Any) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


def _tojson(
    x: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None, sort_keys: bool = False
):
    _check_ints([indent])
    return _check_size(
        json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
    )


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _strftime_now(fmt: str) -> str:
    return _check_size(datetime.now().strftime(fmt))


def _guard_filter(f: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(f)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _check_ints(args)
        _check_ints(kwargs.values())
        if f.__name__ in ("do_format",) and args:
            _check_format(args[0])
        return _check_size(f(*args, **kwargs))

    return guarded


class _Environment(ImmutableSandboxedEnvironment):
    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset(["+", "*", "**", "%"])

    def pollama_concat(self, items: Iterable[Any]) -> str:
        return _concat(items)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int) and abs(right) > 1024:
                raise jinja2.exceptions.SecurityError("exponent too large")
        elif operator == "*":
            for seq, k in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(k, int) and len(seq) * k > MAX_VALUE:
                    raise jinja2.exceptions.SecurityError("repetition too large")
        elif operator == "%" and isinstance(left, str):
            _check_format(left)
            _check_ints(right if isinstance(right, tuple) else (right,))
        return _check_size(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_ints(args)
        _check_ints(kwargs.values())
        return _check_size(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_format(value.__self__)  # "{:>999999999}".format(...)
        return wrapped

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        # Every {% for %} iterates through the per-render iteration budget.
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Call(nodes.Name("pollama_iter__", "load"), [loop.iter], [], None, None)
        return tree


@functools.lru_cache(maxsize=1)
def _environment() -> _Environment:
    env = _Environment(
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[_Generation, jinja2.ext.loopcontrols],
    )
    env.filters = {k: _guard_filter(v) for k, v in env.filters.items()}
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


@functools.lru_cache(maxsize=32)
def compile_template(source: str) -> jinja2.Template:
    """Compile (cached) a chat template. Raises JinjaTemplateError."""
    try:
        return _environment().from_string(source)
    except jinja2.exceptions.TemplateSyntaxError as e:
        raise JinjaTemplateError(f"chat template syntax error (line {e.lineno}): {e.message}") from None
    except (jinja2.exceptions.TemplateError, RecursionError) as e:
        raise JinjaTemplateError(f"chat template error: {e}") from None


def _message_for_template(m: Any) -> dict[str, Any]:
    m = dict(m) if isinstance(m, dict) else {}
    if m.get("thinking") and "reasoning_content" not in m:
        m["reasoning_content"] = m["thinking"]  # the name HF templates read
    return m


def render_jinja_chat(
    source: str,
    messages: Sequence[dict[str, Any]],
    *,
    tools: Sequence[Any] | None = None,
    think: bool | str | None = None,
    add_generation_prompt: bool = True,
    bos_token: str = "",
    eos_token: str = "",
    extra: dict[str, Any] | None = None,
    max_output: int = MAX_OUTPUT,
) -> str:
    """Render a chat template like transformers' apply_chat_template(tokenize=False)."""
    tmpl = compile_template(source)
    ctx: dict[str, Any] = dict(extra or {})
    ctx.update(
        messages=[_message_for_template(m) for m in messages],
        tools=list(tools) if tools else None,
        documents=None,
        add_generation_prompt=add_generation_prompt,
        bos_token=bos_token,
        eos_token=eos_token,
        pollama_iter__=_Budget(MAX_ITERATIONS).iterate,
    )
    if think is not None:
        ctx["enable_thinking"] = bool(think)
        if isinstance(think, str):
            ctx["reasoning_effort"] = think
    out: list[str] = []
    size = 0
    try:
        for piece in tmpl.generate(ctx):
            size += len(piece)
            if size > max_output:
                raise JinjaTemplateError(f"chat template output exceeds {max_output} characters")
            out.append(piece)
    except JinjaTemplateError:
        raise
    except jinja2.exceptions.SecurityError as e:
        raise JinjaTemplateError(f"chat template rejected by the sandbox: {e}") from None
    except jinja2.exceptions.TemplateError as e:
        raise JinjaTemplateError(f"chat template error: {e}") from None
    except RecursionError:
        raise JinjaTemplateError("chat template error: recursion too deep") from None
    except Exception as e:  # a template can make Python raise almost anything ("a" + 1, ...)
        raise JinjaTemplateError(f"chat template error: {type(e).__name__}: {e}") from None
    return "".join(out)
