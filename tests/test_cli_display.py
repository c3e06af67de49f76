"""Terminal output without a server: word wrap of streamed text and the progress bars.

Each case runs pollama's own display code in a child process on a real pseudo-terminal
(so it finds the width and the TTY as it would for a user) and reads the rendered screen.
"""

from __future__ import annotations

import io
import itertools
import re
from pathlib import Path

from pollama.cli.progress import Progress
from tests.cli_support import Terminal, cli_env

WORDS = (
    "the quick brown fox jumps over the lazy dog while seventeen extraordinary "
    "butterflies circle above a quiet riverbank and nobody notices anything at all"
)
LONG_WORD = "Pneumonoultramicroscopicsilicovolcanoconiosis"

STREAM = """
import sys
from pollama.cli.display import Display
text = sys.argv[2]
display = Display(word_wrap=sys.argv[1] == "wrap")
for i in range(0, len(text), 3):  # tokens of three characters: words arrive in pieces
    display.write(text[i : i + 3])
display.write("\\n")
"""


def stream(tmp_path: Path, mode: str, text: str, cols: int = 30) -> list[str]:
    with Terminal(["-c", STREAM, mode, text], cli_env("127.0.0.1:1", tmp_path), cols=cols, python=True) as t:
        assert t.wait_exit() == 0
        return t.lines()


def test_word_wrap_moves_whole_words_to_the_next_line(tmp_path: Path):
    lines = stream(tmp_path, "wrap", WORDS)
    assert len(lines) > 3
    assert all(len(line) <= 30 - 5 for line in lines)  # ollama keeps 5 columns free
    assert " ".join(lines).split() == WORDS.split()  # no word was cut in two


def test_a_word_longer_than_the_line_is_broken(tmp_path: Path):
    lines = stream(tmp_path, "wrap", f"a {LONG_WORD} b")
    assert "".join(lines).replace(" ", "") == f"a{LONG_WORD}b"
    assert len(lines) >= 2 and all(len(line) <= 30 for line in lines)


def test_nowordwrap_leaves_wrapping_to_the_terminal(tmp_path: Path):
    lines = stream(tmp_path, "nowrap", WORDS)
    full = [line.ljust(30) for line in lines[:-1]]  # the screen's trailing spaces were stripped
    assert "".join(full) + lines[-1] == WORDS  # the terminal cut the lines at exactly 30 columns
    assert any(not (a.endswith(" ") or b.startswith(" ")) for a, b in itertools.pairwise(full))


PULL = """
import time
from pollama.cli.progress import Progress
digest = "sha256:" + "ab" * 32
total = 40_000_000
with Progress() as progress:
    progress.update({"status": "pulling manifest"})
    for done in range(0, total + 1, 4_000_000):
        progress.update({"status": "pulling abababababab", "digest": digest, "total": total, "completed": done})
        time.sleep(0.05)
    progress.update({"status": "verifying sha256 digest"})
    progress.update({"status": "success"})
"""


def test_progress_bar_on_a_terminal_shows_size_speed_and_eta(tmp_path: Path):
    with Terminal(["-c", PULL], cli_env("127.0.0.1:1", tmp_path), cols=120, python=True) as t:
        assert t.wait_exit() == 0
        lines = t.lines()
    assert lines[0].strip() == "pulling manifest"
    bar = next(line for line in lines if line.lstrip().startswith("pulling abababababab"))
    assert "100%" in bar and "━" in bar
    assert re.search(r"40\.0/40\.0 MB", bar)  # size
    assert re.search(r"\d+(\.\d+)? [kMG]?B/s", bar)  # speed
    assert re.search(r"\d+:\d\d:\d\d", bar)  # ETA
    assert [line.strip() for line in lines[-2:]] == ["verifying sha256 digest", "success"]


def test_progress_without_a_terminal_prints_plain_lines():
    out = io.StringIO()
    digest = "sha256:" + "cd" * 32
    with Progress(out) as progress:
        progress.update({"status": "pulling manifest"})
        for done in range(0, 1_000_001, 10_000):  # 101 updates must not become 101 lines
            progress.update(
                {"status": "pulling cdcdcdcdcdcd", "digest": digest, "total": 1_000_000, "completed": done}
            )
        progress.update({"status": "success"})
    lines = out.getvalue().splitlines()
    assert "\x1b" not in out.getvalue()
    assert lines[0] == "pulling manifest" and lines[-1] == "success"
    assert "pulling cdcdcdcdcdcd: 100% (1 MB/1 MB)" in lines
    assert len(lines) <= 5
