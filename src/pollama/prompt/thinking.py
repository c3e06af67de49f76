"""Streaming split of generated text into thinking and content (Ollama's thinking/parser.go).

    p = ThinkingParser("<think>", "</think>", prompt=rendered_prompt)
    for piece in stream:
        thinking, content = p.add(piece)
    thinking, content = p.flush()

States as in Ollama: looking for the opening tag (leading whitespace allowed; any other
text means the model is not thinking and everything is content), eating whitespace after
it, thinking until the closing tag, eating whitespace after that, then content. A tag
split across chunks is never emitted in part: text that could be the start of a tag is
held back until the next chunk decides. Work per chunk is proportional to the chunk (plus
the tag length), so it can run on every generated token.
"""

from __future__ import annotations

_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"

_LOOKING = 0
_STARTED = 1  # after the opening tag, eating whitespace
_THINKING = 2
_ENDED = 3  # after the closing tag, eating whitespace
_DONE = 4


def _overlap(s: str, tag: str) -> int:
    """Length of the longest suffix of `s` that is a proper prefix of `tag`."""
    for k in range(min(len(tag) - 1, len(s)), 0, -1):
        if s.endswith(tag[:k]):
            return k
    return 0


class ThinkingParser:
    def __init__(self, opening: str = "<think>", closing: str = "</think>", *, prompt: str | None = None):
        if not opening or not closing:
            raise ValueError("thinking tags must not be empty")
        self.opening = opening
        self.closing = closing
        self._state = _LOOKING
        self._ws = ""  # leading whitespace seen while looking for the opening tag
        self._acc = ""  # held-back text: a possible partial tag
        if prompt is not None and prompt.strip(_GO_SPACE).endswith(opening):
            # The prompt already opened the thinking block (e.g. "...<think>\n").
            self.add(opening)

    @property
    def thinking_done(self) -> bool:
        return self._state in (_ENDED, _DONE)

    def add(self, text: str) -> tuple[str, str]:
        """Feed a chunk; return the (thinking, content) text it completes."""
        thinking: list[str] = []
        content: list[str] = []
        while True:
            st = self._state
            if st == _LOOKING:
                if not self._acc:
                    rest = text.lstrip(_GO_SPACE)
                    self._ws += text[: len(text) - len(rest)]
                    self._acc = rest
                else:
                    self._acc += text
                text = ""
                acc = self._acc
                if acc.startswith(self.opening):
                    after = acc[len(self.opening) :].lstrip(_GO_SPACE)
                    self._ws = ""
                    self._acc = ""
                    self._state = _THINKING if after else _STARTED
                    text = after
                    continue
                if self.opening.startswith(acc):
                    break  # only whitespace, or a partial opening tag so far
                content.append(self._ws + acc)
                self._ws = self._acc = ""
                self._state = _DONE
                break
            if st == _STARTED:
                rest = text.lstrip(_GO_SPACE)
                if not rest:
                    break
                self._state = _THINKING
                text = rest
                continue
            if st == _THINKING:
                acc = self._acc + text
                self._acc = ""
                i = acc.find(self.closing)
                if i >= 0:
                    thinking.append(acc[:i])
                    rest = acc[i + len(self.closing) :].lstrip(_GO_SPACE)
                    self._state = _DONE if rest else _ENDED
                    content.append(rest)
                    break
                k = _overlap(acc, self.closing)
                thinking.append(acc[: len(acc) - k])
                self._acc = acc[len(acc) - k :]
                break
            if st == _ENDED:
                rest = text.lstrip(_GO_SPACE)
                if rest:
                    self._state = _DONE
                    content.append(rest)
                break
            content.append(text)
            break
        return "".join(thinking), "".join(content)

    def flush(self) -> tuple[str, str]:
        """End of generation: release anything held back."""
        acc, ws = self._acc, self._ws
        self._acc = self._ws = ""
        if self._state == _LOOKING:
            return "", ws + acc
        if self._state == _THINKING:
            return acc, ""
        return "", ""


def strip_thinking_from_history(
    messages: list[dict], opening: str = "<think>", closing: str = "</think>"
) -> list[dict]:
    """Remove a leading thinking block from assistant turns before the last user message.

    Ollama does this (filterThinkTags) for qwen3 and deepseek-r1 models, whose earlier
    answers may still carry `<think>...</think>` in their content. Returns new dicts.
    """
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    out = []
    for i, m in enumerate(messages):
        if i < last_user and m.get("role") == "assistant" and isinstance(m.get("content"), str):
            p = ThinkingParser(opening, closing)
            _, content = p.add(m["content"])
            _, rest = p.flush()
            m = {**m, "content": content + rest}
        out.append(m)
    return out
