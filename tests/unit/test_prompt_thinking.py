"""The streaming thinking/content splitter.

test_ollama_streaming_steps replays Ollama's thinking/parser_test.go cases chunk by chunk.
The split tests cut every text at every position (and into single characters) and check
the result never depends on where chunks end, so no partial tag can leak.
"""

from __future__ import annotations

import time

import pytest

from pollama.prompt.thinking import ThinkingParser


def feed(p: ThinkingParser, chunks: list[str]) -> tuple[str, str]:
    thinking, content = [], []
    for c in chunks:
        t, o = p.add(c)
        thinking.append(t)
        content.append(o)
    t, o = p.flush()
    return "".join(thinking) + t, "".join(content) + o


@pytest.mark.parametrize(
    ("text", "thinking", "content"),
    [
        ("<think> internal </think> world", "internal ", "world"),
        ("<think>a</think><think>b</think>c", "a", "<think>b</think>c"),
        ("no think", "", "no think"),
    ],
)
def test_ollama_extract_thinking(text: str, thinking: str, content: str) -> None:
    assert ThinkingParser("<think>", "</think>").add(text) == (thinking, content)


# (input, want thinking, want content) per step; Ollama's TestThinkingStreaming
OLLAMA_STEPS = {
    "content without a thinking tag": [("  abc", "", "  abc"), ("def", "", "def")],
    "content before a thinking tag nerfs the thinking tag": [
        ("  abc <think>def</think> ghi", "", "  abc <think>def</think> ghi")
    ],
    "building up a thinking tag partially": [("  <th", "", ""), ("in", "", ""), ("k>a", "a", "")],
    "partial closing tag": [("<think>abc</th", "abc", ""), ("ink>def", "", "def")],
    "partial closing tag fakeout": [
        ("<think>abc</th", "abc", ""),
        ("ing>def", "</thing>def", ""),
        ("ghi</thi", "ghi", ""),
        ("nk>jkl", "", "jkl"),
    ],
    "whitespace after thinking tag": [("  <think>abc</think>\n\ndef", "abc", "def")],
    "whitespace after thinking tag (incremental)": [
        ("  <think>abc</think>", "abc", ""),
        ("\n\ndef", "", "def"),
    ],
    "whitespace after thinking tag with content and more whitespace": [
        ("  <think>abc</think>\n\ndef ", "abc", "def "),
        (" ghi", "", " ghi"),
    ],
    "token by token": [
        ("<think>", "", ""),
        ("\n", "", ""),
        ("</think>", "", ""),
        ("\n\n", "", ""),
        ("Hi", "", "Hi"),
        (" there", "", " there"),
    ],
    "leading thinking whitespace": [
        ("  <think>   \t ", "", ""),
        ("  these are some ", "these are some ", ""),
        ("thoughts </think>  ", "thoughts ", ""),
        ("  more content", "", "more content"),
    ],
}


@pytest.mark.parametrize("case", sorted(OLLAMA_STEPS))
def test_ollama_streaming_steps(case: str) -> None:
    p = ThinkingParser("<think>", "</think>")
    for text, thinking, content in OLLAMA_STEPS[case]:
        assert p.add(text) == (thinking, content)


WHOLE = [
    ("<think>\nLet me think.\n</think>\n\nThe answer is 4.", "Let me think.\n", "The answer is 4."),
    ("  Hello <think>x</think>", "", "  Hello <think>x</think>"),
    ("<think>a</thi</think>b", "a</thi", "b"),
    ("<thinking>no</thinking>", "", "<thinking>no</thinking>"),
    ("<think></think>", "", ""),
    ("<think>abc", "abc", ""),
    ("<think>x</think", "x</think", ""),
    ("\n\n<think>x</think>y<think>z", "x", "y<think>z"),
    ("<th", "", "<th"),
    ("   ", "", "   "),
]


@pytest.mark.parametrize(("text", "thinking", "content"), WHOLE)
def test_every_split_position(text: str, thinking: str, content: str) -> None:
    assert feed(ThinkingParser(), [text]) == (thinking, content)
    for i in range(len(text) + 1):
        assert feed(ThinkingParser(), [text[:i], text[i:]]) == (thinking, content), i
    assert feed(ThinkingParser(), list(text)) == (thinking, content)


@pytest.mark.parametrize(("text", "thinking", "content"), WHOLE[:4])
def test_every_three_way_split(text: str, thinking: str, content: str) -> None:
    for i in range(len(text) + 1):
        for j in range(i, len(text) + 1):
            assert feed(ThinkingParser(), [text[:i], text[i:j], text[j:]]) == (thinking, content)


def test_partial_tags_are_never_emitted() -> None:
    p = ThinkingParser()
    assert p.add("<thi") == ("", "")
    assert p.add("nk>reason</thi") == ("reason", "")
    assert p.add("nk>") == ("", "")
    assert p.thinking_done
    assert p.add("done") == ("", "done")


def test_prompt_ending_with_opening_tag_starts_in_thinking() -> None:
    p = ThinkingParser("<think>", "</think>", prompt="<|im_start|>assistant\n<think>\n")
    assert feed(p, ["I should ", "add.", "</think>", "\n\n4"]) == ("I should add.", "4")
    q = ThinkingParser("<think>", "</think>", prompt="<|im_start|>assistant\n")
    assert feed(q, ["I should add.</think>4"]) == ("", "I should add.</think>4")


def test_custom_tags() -> None:
    text = "<unused94>plan<unused95>\nanswer"
    for i in range(len(text) + 1):
        assert feed(ThinkingParser("<unused94>", "<unused95>"), [text[:i], text[i:]]) == ("plan", "answer")


def test_empty_tags_are_rejected() -> None:
    with pytest.raises(ValueError):
        ThinkingParser("", "</think>")


def test_held_back_text_stays_small() -> None:
    p = ThinkingParser()
    p.add("<think>")
    for _ in range(2000):
        t, c = p.add("a<")
        assert t and not c
        assert len(p._acc) < len("</think>")


def test_linear_time_on_long_streams() -> None:
    p = ThinkingParser()
    n = 200_000
    start = time.perf_counter()
    out = [p.add(ch) for ch in "<think>" + "x" * n + "</think>" + "y" * n]
    elapsed = time.perf_counter() - start
    assert sum(len(t) for t, _ in out) == n and sum(len(c) for _, c in out) == n
    assert elapsed < 5.0  # quadratic work would take minutes


def test_strip_thinking_from_history() -> None:
    from pollama.prompt.thinking import strip_thinking_from_history

    msgs = [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "<think>plan</think>\n\nanswer 1"},
        {"role": "assistant", "content": "plain <think>kept</think>"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "<think>last turn is kept</think>x"},
    ]
    out = strip_thinking_from_history(msgs)
    assert [m["content"] for m in out] == [
        "q1",
        "answer 1",
        "plain <think>kept</think>",
        "q2",
        msgs[4]["content"],
    ]
    assert msgs[1]["content"].startswith("<think>")  # inputs untouched
