"""What a model's template supports, read from its parse tree as Ollama does.

- Go template: `tools` if it uses `.Tools`, `insert` if it uses `.Suffix`, `thinking` if
  thinking tags can be inferred (server/images.go Capabilities, thinking/template.go
  InferTags). The tool-call tag comes from the text opening the `{{ if .ToolCalls }}`
  branch (tools/template.go parseTag), `{` when there is none.
- jinja (GGUF chat_template): `tools` if the text contains "tools", `thinking` if it
  contains "<think>" (§1.10); the tool-call tag is guessed from well-known markers.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._goparse import (
    ActionNode,
    BranchNode,
    CommandNode,
    FieldNode,
    IfNode,
    ListNode,
    Node,
    PipeNode,
    RangeNode,
    TemplateNode,
    TextNode,
    WithNode,
)
from .gotemplate import Template
from .render import OllamaTemplate, parse_template

_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


@dataclass(frozen=True)
class Capabilities:
    tools: bool
    insert: bool
    thinking: bool
    think_open: str  # "" when no thinking tags
    think_close: str
    tool_tag: str  # what starts a tool call in the output; "{" means bare JSON

    def names(self) -> list[str]:
        """The template-derived capability names, in Ollama's order."""
        out = []
        if self.tools:
            out.append("tools")
        if self.insert:
            out.append("insert")
        if self.thinking:
            out.append("thinking")
        return out


def _children(n: Node) -> list[Node]:
    """Child nodes in the order Ollama's templateVisit walks them."""
    if isinstance(n, ListNode):
        return list(n.nodes)
    if isinstance(n, BranchNode):
        return [c for c in (n.pipe, n.list, n.else_list) if c is not None]
    if isinstance(n, (ActionNode, TemplateNode)):
        return [n.pipe] if n.pipe is not None else []
    if isinstance(n, PipeNode):
        return list(n.cmds)
    if isinstance(n, CommandNode):
        return list(n.args)
    return []


def _uses_field(n: Node | None, name: str) -> bool:
    if n is None:
        return False
    if isinstance(n, FieldNode) and n.ident[0] == name:
        return True
    return any(_uses_field(c, name) for c in _children(n))


def infer_thinking_tags(template: Template | OllamaTemplate | str) -> tuple[str, str]:
    """Port of Ollama's InferTags: the text around `.Thinking` inside `range .Messages`.

    For every `.Thinking` field whose nearest enclosing range iterates `.Messages`, the
    nearest enclosing list's first and last text nodes (trimmed) become the tags.
    """
    root = parse_template(template).template.root if not isinstance(template, Template) else template.root
    opening = closing = ""
    ancestors: list[Node] = []

    def visit(n: Node) -> None:
        nonlocal opening, closing
        ancestors.append(n)
        if isinstance(n, FieldNode) and n.ident and n.ident[0] == "Thinking":
            rng = next((a for a in reversed(ancestors) if isinstance(a, RangeNode)), None)
            if rng is not None and _uses_field(rng.pipe, "Messages"):
                lst = next((a for a in reversed(ancestors) if isinstance(a, ListNode)), None)
                if lst is not None and lst.nodes:
                    if isinstance(lst.nodes[0], TextNode):
                        opening = lst.nodes[0].text.strip(_GO_SPACE)
                    if isinstance(lst.nodes[-1], TextNode):
                        closing = lst.nodes[-1].text.strip(_GO_SPACE)
        for c in _children(n):
            visit(c)
        ancestors.pop()

    visit(root)
    return opening, closing


def _find_tool_calls_if(nodes: list[Node]) -> IfNode | None:
    for n in nodes:
        if isinstance(n, IfNode):
            if any(
                isinstance(a, FieldNode) and "ToolCalls" in a.ident for cmd in n.pipe.cmds for a in cmd.args
            ):
                return n
            found = _find_tool_calls_if(n.list.nodes)
            if found is None and n.else_list is not None:
                found = _find_tool_calls_if(n.else_list.nodes)
            if found is not None:
                return found
        elif isinstance(n, (RangeNode, WithNode)):
            found = _find_tool_calls_if(n.list.nodes)
            if found is None and n.else_list is not None:
                found = _find_tool_calls_if(n.else_list.nodes)
            if found is not None:
                return found
        elif isinstance(n, ListNode):
            found = _find_tool_calls_if(n.nodes)
            if found is not None:
                return found
    return None


def _first_text(nodes: list[Node]) -> TextNode | None:
    """Depth-first first non-blank text, stopping at the first action or nested block."""
    for n in nodes:
        if isinstance(n, TextNode):
            if n.text.strip(" \t\r\n\v\f"):
                return n
        elif isinstance(n, BranchNode):
            t = _first_text(n.list.nodes)
            if t is None and n.else_list is not None:
                t = _first_text(n.else_list.nodes)
            return t
        elif isinstance(n, ListNode):
            t = _first_text(n.nodes)
            if t is not None:
                return t
        elif isinstance(n, ActionNode):
            return None
    return None


def tool_call_tag(template: Template | OllamaTemplate | str) -> str:
    """Port of Ollama's parseTag: text opening the `{{ if .ToolCalls }}` branch, up to `{`."""
    root = parse_template(template).template.root if not isinstance(template, Template) else template.root
    node = _find_tool_calls_if(root.nodes)
    if node is None:
        return "{"
    text = _first_text(node.list.nodes)
    if text is None:
        return "{"
    tag = text.text.replace("\r\n", "\n").split("{", 1)[0].strip(_GO_SPACE)
    return tag or "{"


def go_template_capabilities(template: str | Template | OllamaTemplate) -> Capabilities:
    ot = parse_template(template)
    opening, closing = infer_thinking_tags(ot)
    has_tags = bool(opening and closing)
    return Capabilities(
        tools=ot.references("Tools"),
        insert=ot.references("Suffix"),
        thinking=has_tags,
        think_open=opening if has_tags else "",
        think_close=closing if has_tags else "",
        tool_tag=tool_call_tag(ot),
    )


_JINJA_TOOL_TAGS = ("<tool_call>", "[TOOL_CALLS]", "<|python_tag|>", "<|tool_call|>", "<function_calls>")


def jinja_template_capabilities(source: str) -> Capabilities:
    thinking = "<think>" in source
    tag = next((t for t in _JINJA_TOOL_TAGS if t in source), "{")
    return Capabilities(
        tools="tools" in source,
        insert=False,
        thinking=thinking,
        think_open="<think>" if thinking else "",
        think_close="</think>" if thinking else "",
        tool_tag=tag,
    )
