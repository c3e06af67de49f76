"""The interactive `pollama run` in a real terminal (a pty rendered by pyte; see cli_support).

Everything a person does is typed as keys: slash commands, `\"\"\"` blocks, Ctrl+C, Ctrl+D,
the Up arrow. Answers come from `cli-tiny` (num_predict 3, temperature 0); the tests look at
the shape of the screen and at what the commands change, never at the words of the model.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.cli_support import Terminal, cli_env
from tests.serverproc import ServerProcess

MODEL = "cli-tiny"
PROMPT = ">>> Send a message (/? for help)"


def repl(server: ServerProcess, home: Path, **env: str) -> Terminal:
    term = Terminal(["run", MODEL], cli_env(server.base_url, home, **env))
    term.wait_prompt()
    return term


def blocks(text: str) -> list[str]:
    """The `eval count:` lines of the --verbose blocks on the screen, one per finished answer."""
    return re.findall(r"^eval count: +(\d+) token\(s\)$", text, re.M)


def test_repl_session(cli_server: ServerProcess, tmp_path: Path):
    with repl(cli_server, tmp_path) as term:
        assert term.lines()[0] == PROMPT

        term.line("/?")
        term.wait_for(r'^Use """ to begin a multi-line message\.$')
        term.line("/set")
        term.wait_for(r"^  /set nothink +Disable thinking$")
        term.line("/frobnicate now")
        term.wait_for(r"^Unknown command '/frobnicate'\. Type /\? for help$")
        term.line("/set parameter num_predict lots")
        term.wait_for(r'^Couldn\'t set parameter: "invalid int value \[lots\]"$')

        # /set parameter changes the answer: 1 token instead of the model's 3.
        term.line("/set verbose")
        term.wait_for(r"^Set 'verbose' mode\.$")
        term.line("/set parameter num_predict 1")
        term.wait_for(r"^Set parameter 'num_predict' to '1'$")
        term.line("1, 2, 3,")
        text = term.wait_for(lambda t: len(blocks(t)) == 1)
        assert blocks(text) == ["1"]
        term.wait_prompt()

        # A \"\"\" block is one message: continuation prompts, then exactly one answer.
        term.line('"""')
        term.wait_for(r"^\.\.\. Press Enter to send$")
        term.line("4, 5,")
        term.line('6,"""')
        text = term.wait_for(lambda t: len(blocks(t)) == 2)
        assert re.search(r'^>>> """\n\.\.\. 4, 5,\n\.\.\. 6,"""$', text, re.M), text
        term.wait_prompt()

        # Ctrl+C stops a long answer and the session goes on.
        term.line("/set parameter num_predict 4000")
        term.wait_for(r"^Set parameter 'num_predict' to '4000'$")
        term.line("/set nowordwrap")
        term.wait_for(r"^Set 'nowordwrap' mode\.$")
        term.line("10, 11, 12, 13, 14, 15, 16,")
        term.wait_for(r"^>>> 10, 11, 12, 13, 14, 15, 16,\n.*\d.*\d")  # a few numbers streamed
        term.send(Terminal.CTRL_C)
        text = term.wait_prompt(timeout=60)
        assert len(blocks(text)) == 2  # no summary: the answer was cut, not finished

        term.send(Terminal.CTRL_C)  # on an empty line: a hint, not an exit
        term.wait_for(r"^Use Ctrl \+ d or /bye to exit\.$")
        term.line("/clear")
        term.wait_for(r"^Cleared session context$")
        term.line("/set parameter num_predict 1")
        term.line("1, 2,")
        term.wait_for(lambda t: len(blocks(t)) == 3)
        term.wait_prompt()
        term.line("/bye")
        assert term.wait_exit() == 0

    history = (tmp_path / ".ollama" / "history").read_text().splitlines()
    assert history[:4] == ["/?", "/set", "/frobnicate now", "/set parameter num_predict lots"]
    assert history[-1] == "/bye" and '6,"""' in history


def test_history_across_runs_and_nohistory(cli_server: ServerProcess, tmp_path: Path):
    with repl(cli_server, tmp_path) as term:
        term.line("/set quiet")
        term.wait_for(r"^Set 'quiet' mode\.$")
        term.line("/set wordwrap")
        term.wait_for(r"^Set 'wordwrap' mode\.$")
        term.send(Terminal.CTRL_D)  # on an empty line: exit
        assert term.wait_exit() == 0
    path = tmp_path / ".ollama" / "history"
    assert path.read_text() == "/set quiet\n/set wordwrap\n"

    with repl(cli_server, tmp_path) as term:  # a new run recalls the last one's lines
        term.send(Terminal.UP)
        term.wait_for(r"^>>> /set wordwrap$")
        term.send(Terminal.UP)
        term.wait_for(r"^>>> /set quiet$")
        term.send(Terminal.ENTER)
        term.wait_for(r"^Set 'quiet' mode\.$")
        term.line("/bye")
        assert term.wait_exit() == 0
    assert path.read_text() == "/set quiet\n/set wordwrap\n/set quiet\n/bye\n"

    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\necho "/set verbose" > "$1"\n')
    editor.chmod(0o755)
    with repl(cli_server, tmp_path, OLLAMA_NOHISTORY="1", OLLAMA_EDITOR=str(editor)) as term:
        term.send(Terminal.UP)  # reads the history, never writes it
        term.wait_for(r"^>>> /bye$")
        term.send(Terminal.CTRL_C)
        term.send("\x07")  # Ctrl+G: the editor's text becomes the line, to check and send
        term.wait_for(r"^>>> /set verbose$")
        term.send(Terminal.CTRL_C)
        term.line("/set verbose")
        term.wait_for(r"^Set 'verbose' mode\.$")
        term.send(Terminal.UP)  # this session's own lines are still recalled
        term.wait_for(r"^>>> /set verbose$")
        term.send(Terminal.CTRL_C)
        term.send(Terminal.CTRL_D)
        assert term.wait_exit() == 0
    assert path.read_text() == "/set quiet\n/set wordwrap\n/set quiet\n/bye\n"
