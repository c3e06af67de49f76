"""Ollama's prompt rendering on top of the Go template interpreter.

Follows `template/template.go` (Parse, Execute, collate) and `server/prompt.go`
(chatPrompt) plus the generate handler's message assembly:

- messages mode when the template uses `.Messages`: one execution over all messages,
  `.System` being every system message joined by a blank line;
- legacy mode otherwise: one execution per completed (system, user, assistant) turn with
  `.System/.Prompt/.Response`, the last turn rendered with everything after its first
  `.Response` removed (so the prompt ends where the model should continue);
- suffix (fill-in-the-middle) mode when both a prompt and a suffix are given.

Inputs are wire-shaped dicts; the Go-shaped view (`.Role`, `.ToolCalls`, ...) is built
here. `think` is None | bool | "low" | "medium" | "high" | "max".
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

from ._goparse import (
    ActionNode,
    BranchNode,
    CommandNode,
    FieldNode,
    ListNode,
    Node,
    PipeNode,
)
from ._views import MessageList, message_view, tools_view
from .errors import TemplateError
from .gotemplate import DEFAULT_MAX_OUTPUT, Template

ThinkValue = bool | str | None

__all__ = [
    "OllamaTemplate",
    "ThinkValue",
    "fit_chat",
    "fit_messages",
    "message_images",
    "parse_template",
    "render_chat",
    "render_generate",
    "think_values",
    "with_image_tags",
]


def _response_action() -> ActionNode:
    # The node Ollama appends: {{ .Response }}
    return ActionNode(0, 1, PipeNode(0, 1, cmds=[CommandNode(0, 1, [FieldNode(0, 1, ["Response"])])]))


def _cut_after_response(root: ListNode) -> ListNode:
    """Copy of `root` with every node after the first `.Response` field removed.

    Port of Ollama's deleteNode walk: branch conditions are not inspected, and nothing
    is descended into besides lists, branch bodies, actions and their pipelines.
    """
    cut = False

    def pred(n: Node) -> bool:
        nonlocal cut
        if isinstance(n, FieldNode) and "Response" in n.ident:
            cut = True
            return False
        return cut

    def walk(n: Node) -> Node | None:
        if pred(n):
            return None
        if isinstance(n, ListNode):
            kept = [w for c in n.nodes if (w := walk(c)) is not None]
            return dataclasses.replace(n, nodes=kept)
        if isinstance(n, BranchNode):
            body = walk(n.list)
            # Ollama would panic if the cut happened inside the body of a branch with an
            # else; an emptied else is the sane reading.
            other = walk(n.else_list) if n.else_list is not None else None
            return type(n)(
                n.pos,
                n.line,
                n.pipe,
                body if isinstance(body, ListNode) else ListNode(n.pos, n.line),
                other if isinstance(other, ListNode) or n.else_list is None else ListNode(n.pos, n.line),
            )
        if isinstance(n, ActionNode):
            p = walk(n.pipe)
            return None if p is None else dataclasses.replace(n, pipe=p)
        if isinstance(n, PipeNode):
            cmds = []
            for c in n.cmds:
                args = [w for a in c.args if (w := walk(a)) is not None]
                if not args:
                    return None
                cmds.append(dataclasses.replace(c, args=args))
            return dataclasses.replace(n, cmds=cmds) if cmds else None
        return n

    out = walk(root)
    return out if isinstance(out, ListNode) else ListNode(root.pos, root.line)


class OllamaTemplate:
    """A model template parsed the way Ollama parses it (`{{ .Response }}` appended when the
    template mentions neither `.Messages` nor `.Response`)."""

    __slots__ = ("_legacy_last", "template", "uses_messages")

    def __init__(self, template: Template):
        ids = template.identifiers()
        if "messages" not in ids and "response" not in ids:
            root = dataclasses.replace(template.root, nodes=[*template.root.nodes, _response_action()])
            template = template.with_root(root)
        self.template = template
        self.uses_messages = "messages" in ids
        self._legacy_last: Template | None = None

    @property
    def legacy_last(self) -> Template:
        """The template used for the final, unfinished turn in legacy mode."""
        if self._legacy_last is None:
            self._legacy_last = self.template.with_root(_cut_after_response(self.template.root))
        return self._legacy_last

    @property
    def source(self) -> str:
        return self.template.source

    def references(self, name: str) -> bool:
        return self.template.references(name)


@functools.lru_cache(maxsize=128)
def _parse_cached(source: str) -> OllamaTemplate:
    return OllamaTemplate(Template.parse(source))


def parse_template(template: str | Template | OllamaTemplate) -> OllamaTemplate:
    """Parse (cached by source text) or wrap a template. Raises TemplateError."""
    if isinstance(template, OllamaTemplate):
        return template
    if isinstance(template, Template):
        return OllamaTemplate(template)
    return _parse_cached(template)


@dataclasses.dataclass(frozen=True)
class ThinkValues:
    think: bool
    level: str
    is_set: bool


def think_values(think: ThinkValue) -> ThinkValues:
    """`.Think`, `.ThinkLevel`, `.IsThinkSet` for a request's `think` (Ollama's ThinkValue)."""
    if think is None:
        return ThinkValues(False, "", False)
    if isinstance(think, bool):
        return ThinkValues(think, "medium" if think else "", True)
    return ThinkValues(True, str(think), True)


def _normalize(m: Any) -> dict[str, Any]:
    m = dict(m) if isinstance(m, dict) else {}
    role = m.get("role")
    m["role"] = role.lower() if isinstance(role, str) else ""
    content = m.get("content")
    m["content"] = content if isinstance(content, str) else ("" if content is None else str(content))
    return m


def collate(messages: Sequence[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """All system texts joined by a blank line, and the messages with consecutive same-role
    messages merged (content joined by a blank line), except tool messages."""
    system = [m["content"] for m in messages if m["role"] == "system"]
    out: list[dict[str, Any]] = []
    for m in messages:
        if out and out[-1]["role"] == m["role"] and m["role"] != "tool":
            out[-1] = {**out[-1], "content": out[-1]["content"] + "\n\n" + m["content"]}
        else:
            out.append(m)
    return "\n\n".join(system), out


def _execute(
    ot: OllamaTemplate,
    *,
    messages: Sequence[dict[str, Any]] | None,
    tools: Sequence[Any] | None,
    prompt: str = "",
    suffix: str = "",
    think: ThinkValue = None,
) -> str:
    """Ollama's Template.Execute(Values{...})."""
    tv = think_values(think)
    base = {"Think": tv.think, "ThinkLevel": tv.level, "IsThinkSet": tv.is_set}
    system, collated = collate(messages or [])
    if prompt and suffix:
        return ot.template.execute({"Prompt": prompt, "Suffix": suffix, "Response": "", **base})
    if ot.uses_messages:
        data = {
            "System": system,
            "Messages": MessageList((message_view(m) for m in collated), is_nil=not collated),
            "Tools": tools_view(tools),
            "Response": "",
            **base,
        }
        return ot.template.execute(data)

    out: list[str] = []
    size = 0
    turn = {"System": "", "Prompt": "", "Response": ""}

    def run(t: Template) -> None:
        nonlocal size
        s = t.execute({**turn, **base}, max_output=DEFAULT_MAX_OUTPUT - size)
        size += len(s)
        out.append(s)

    for m in collated:
        role, content = m["role"], m["content"]
        if role == "system":
            if turn["Prompt"] or turn["Response"]:
                run(ot.template)
                turn = {"System": "", "Prompt": "", "Response": ""}
            turn["System"] = content
        elif role == "user":
            if turn["Response"]:
                run(ot.template)
                turn = {"System": "", "Prompt": "", "Response": ""}
            turn["Prompt"] = content
        elif role == "assistant":
            turn["Response"] = content
    run(ot.legacy_last)
    return "".join(out)


def message_images(messages: Sequence[dict[str, Any]]) -> list[Any]:
    """The images of `messages`, indexed as their `[img-N]` markers (see with_image_tags)."""
    out: list[Any] = []
    for m in messages:
        images = m.get("images")
        if isinstance(images, list):
            out.extend(images)
    return out


def with_image_tags(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Put `[img-N]` before each message's text, or in place of its `[img]` placeholders."""
    out = []
    n = 0
    for m in messages:
        images = m.get("images")
        if isinstance(images, list) and images:
            prefix = ""
            text = m["content"]
            for _ in images:
                tag = f"[img-{n}]"
                n += 1
                if "[img]" in text:
                    text = text.replace("[img]", tag, 1)
                else:
                    prefix += tag
            m = {**m, "content": prefix + text}
        out.append(m)
    return out


def render_chat(
    template: str | Template | OllamaTemplate,
    messages: Sequence[dict[str, Any]],
    *,
    tools: Sequence[Any] | None = None,
    think: ThinkValue = None,
) -> str:
    """The prompt for a chat request, without truncation."""
    ot = parse_template(template)
    msgs = with_image_tags([_normalize(m) for m in messages])
    return _execute(ot, messages=msgs, tools=tools, think=think)


def render_generate(
    template: str | Template | OllamaTemplate,
    *,
    prompt: str,
    system: str | None = None,
    suffix: str | None = None,
    think: ThinkValue = None,
    images: Sequence[Any] | None = None,
    history: Sequence[dict[str, Any]] | None = None,
) -> str:
    """The prompt for a generate request, as Ollama's GenerateHandler builds it.

    `system` is the effective system prompt (the request's, else the model's SYSTEM);
    `history` the model's MESSAGE list (Ollama leaves it out when `context` is given);
    `images` are attached to the user message and become `[img-N]` markers.
    """
    ot = parse_template(template)
    if suffix:
        return _execute(ot, messages=None, tools=None, prompt=prompt, suffix=suffix, think=think)
    msgs: list[dict[str, Any]] = []
    if system:
        msgs.append({"role": "system", "content": system})
    msgs.extend(_normalize(m) for m in (history or []))
    user: dict[str, Any] = {"role": "user", "content": prompt}
    if images:
        user["images"] = list(images)
    msgs.append(user)
    return _execute(ot, messages=with_image_tags(msgs), tools=None, think=think)


def _tool_block_start(msgs: Sequence[dict[str, Any]], idx: int) -> int:
    """Where history may start so that tool results keep the assistant call before them."""
    if idx <= 0 or idx >= len(msgs) or msgs[idx]["role"] != "tool":
        return idx
    start = idx
    while start > 0 and msgs[start - 1]["role"] == "tool":
        start -= 1
    a = start - 1
    if a >= 0 and msgs[a]["role"] == "assistant" and msgs[a].get("tool_calls"):
        return a
    return idx


def fit_messages(
    messages: Sequence[dict[str, Any]],
    render: Callable[[list[dict[str, Any]]], str],
    count_tokens: Callable[[str], int],
    num_ctx: int,
    *,
    image_tokens: int = 0,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Choose the history that fits `num_ctx` tokens (Ollama's chatPrompt truncation).

    Drops messages from the front; system messages are always kept, and so is the last
    message (even if it alone does not fit); a tool result is never kept without the
    assistant tool call before it. `render` turns a message list into a prompt (any
    renderer: Go template, jinja); `image_tokens` is what each image costs (Ollama counts
    768 when the model has a projector). Returns (system messages from the dropped part,
    the kept tail, number of non-system messages dropped).

    Ollama tries start positions one by one; since dropping messages never makes the
    prompt longer, a binary search finds the same position with O(log n) renders.
    """
    msgs = [_normalize(m) for m in messages]
    last = len(msgs) - 1

    def kept(start: int) -> list[dict[str, Any]]:
        return [m for m in msgs[:start] if m["role"] == "system"] + msgs[start:]

    def fits(i: int) -> bool:
        start = _tool_block_start(msgs, i)
        n = count_tokens(render(kept(start)))
        if image_tokens:
            n += image_tokens * sum(len(m.get("images") or []) for m in msgs[start:])
        return n <= num_ctx

    chosen = 0
    if last > 0 and not fits(0):
        lo, hi = 1, last  # fits(last) is assumed: the last message is always kept
        while lo < hi:
            mid = (lo + hi) // 2
            if fits(mid):
                hi = mid
            else:
                lo = mid + 1
        chosen = lo
    start = _tool_block_start(msgs, chosen)
    system = [m for m in msgs[:start] if m["role"] == "system"]
    return system, msgs[start:], start - len(system)


def fit_chat(
    template: str | Template | OllamaTemplate,
    messages: Sequence[dict[str, Any]],
    count_tokens: Callable[[str], int],
    num_ctx: int,
    *,
    tools: Sequence[Any] | None = None,
    think: ThinkValue = None,
    image_tokens: int = 0,
) -> tuple[str, int, list[Any]]:
    """The chat prompt with the oldest history dropped until it fits `num_ctx` tokens (see
    fit_messages): the prompt, the number of non-system messages dropped, and the images of
    the messages sent, indexed as their `[img-N]` markers."""
    ot = parse_template(template)

    def render(msgs: list[dict[str, Any]]) -> str:
        return _execute(ot, messages=msgs, tools=tools, think=think)

    system, tail, dropped = fit_messages(messages, render, count_tokens, num_ctx, image_tokens=image_tokens)
    # Image markers are numbered over the messages actually sent, as Ollama does.
    return render(system + with_image_tags(tail)), dropped, message_images(tail)


def validate_template(source: str) -> None:
    """Raise TemplateError if `source` is not a valid Go template (for /api/create)."""
    parse_template(source)


__all__ += ["TemplateError", "collate", "validate_template"]
