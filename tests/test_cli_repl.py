"""The interactive `pollama run` in a real terminal (a pty rendered by pyte; see cli_support).

Everything a person does is typed as keys: slash commands, `\"\"\"` blocks, Ctrl+C, Ctrl+D,
the Up arrow. Answers come from `cli-tiny` (num_predict 3, temperature 0); the tests look at
the shape of the screen and at what the commands change, never at the words of the model.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.cli_support import CONTINUE_TEMPLATE, Terminal, cli_env
from tests.serverproc import ServerProcess

MODEL = "cli-tiny"
PROMPT = ">>> Send a message (/? for help)"


def repl(server: ServerProcess, home: Path, model: str = MODEL, **env: str) -> Terminal:
    term = Terminal(["run", model], cli_env(server.base_url, home, **env))
    term.wait_prompt()
    return term


def blocks(text: str) -> list[str]:
    """The `eval count:` lines of the --verbose blocks on the screen, one per finished answer."""
    return re.findall(r"^eval count: +(\d+) token\(s\)$", text, re.M)


def after(screen: str, line: str) -> str:
    """What the screen shows below the last prompt line `>>> {line}` (its output)."""
    return ("\n" + screen).rsplit(f"\n>>> {line}\n", 1)[-1].rsplit("\n>>> ", 1)[0]


def test_repl_session(cli_server: ServerProcess, tmp_path: Path):
    with repl(cli_server, tmp_path) as term:
        assert term.lines()[0] == PROMPT

        assert after(term.submit("/?"), "/?").endswith('Use """ to begin a multi-line message.\n')
        assert "  /set nothink           Disable thinking" in after(term.submit("/set"), "/set")
        out = after(term.submit("/frobnicate now"), "/frobnicate now")
        assert out == "Unknown command '/frobnicate'. Type /? for help"
        out = after(term.submit("/set parameter num_predict lots"), "/set parameter num_predict lots")
        assert out == 'Couldn\'t set parameter: "invalid int value [lots]"'
        assert after(term.submit("/set format json"), "/set format json") == "Set format to 'json' mode."
        out = after(term.submit("/set format xml"), "/set format xml")
        assert out == "Invalid or missing format. For 'json' mode use '/set format json'"
        assert after(term.submit("/set noformat"), "/set noformat") == "Disabled format."
        out = after(term.submit("/set think"), "/set think")
        assert out == "warning: model \"cli-tiny\" does not support thinking output\nSet 'think' mode."
        term.submit("/set nothink")

        # /set parameter changes the answer: 1 token instead of the model's 3.
        assert after(term.submit("/set verbose"), "/set verbose") == "Set 'verbose' mode."
        out = after(term.submit("/set parameter num_predict 1"), "/set parameter num_predict 1")
        assert out == "Set parameter 'num_predict' to '1'"
        assert blocks(term.submit("1, 2, 3,")) == ["1"]

        # A \"\"\" block is one message: continuation prompts, then exactly one answer.
        term.submit('"""')
        term.submit("4, 5,")
        text = term.submit('6,"""')
        assert re.search(r'^>>> """\n\.\.\. 4, 5,\n\.\.\. 6,"""\n', text, re.M), text
        assert blocks(text) == ["1", "1"]

        # Ctrl+C stops a long answer and the session goes on.
        term.submit("/set parameter num_predict 4000")
        term.submit("/set nowordwrap")
        term.line("10, 11, 12, 13, 14, 15, 16,")
        term.wait_for(r"^>>> 10, 11, 12, 13, 14, 15, 16,\n.*\d.*\d")  # a few numbers streamed
        term.send(Terminal.CTRL_C)
        text = term.wait_prompt(timeout=60)
        assert len(blocks(text)) == 2  # no summary: the answer was cut, not finished

        term.send(Terminal.CTRL_C)  # on an empty line: a hint, not an exit
        term.wait_for(r"^>>>\nUse Ctrl \+ d or /bye to exit\.\n" + re.escape(PROMPT) + r"\Z")
        assert after(term.submit("/clear"), "/clear") == "Cleared session context"
        term.submit("/set parameter num_predict 1")
        assert len(blocks(term.submit("1, 2,"))) == 3
        term.line("/bye")
        assert term.wait_exit() == 0

    history = (tmp_path / ".ollama" / "history").read_text().splitlines()
    assert history[:4] == ["/?", "/set", "/frobnicate now", "/set parameter num_predict lots"]
    assert history[-1] == "/bye" and '6,"""' in history


def test_save_show_and_load(cli_server: ServerProcess, tmp_path: Path):
    with repl(cli_server, tmp_path) as term:
        assert after(term.submit("/set system You are terse."), "/set system You are terse.") == (
            "Set system message."
        )
        term.submit("/set parameter num_predict 2")
        term.submit("/set parameter stop ## END")
        term.submit("1, 2,")
        out = after(term.submit("/save cli-saved"), "/save cli-saved")
        assert out == "Created new model 'cli-saved'"
        out = after(term.submit("/save bad/name/is/bad"), "/save bad/name/is/bad")
        assert out == "error: The model name 'bad/name/is/bad' is invalid"

        out = after(term.submit("/load no-such-model"), "/load no-such-model")
        assert out == "Loading model 'no-such-model'\nCouldn't find model 'no-such-model'"
        assert after(term.submit("/load cli-saved"), "/load cli-saved") == "Loading model 'cli-saved'"
        assert after(term.submit("/show system"), "/show system") == "You are terse.\n"
        out = after(term.submit("/show parameters"), "/show parameters")
        assert out.startswith("Model defined parameters:\n")
        assert re.search(r"^  num_predict +2$", out, re.M) and re.search(r'^  stop +"##"$', out, re.M)
        assert after(term.submit("/show template"), "/show template") == CONTINUE_TEMPLATE
        out = after(term.submit("/show modelfile"), "/show modelfile")
        assert out.startswith("# Modelfile generated by") and "\nSYSTEM You are terse." in out
        out = after(term.submit("/show license"), "/show license")
        assert out == "No license was specified for this model."
        out = after(term.submit("/show info"), "/show info")
        assert re.search(r"^    architecture +gemma3$", out, re.M)
        out = after(term.submit("/show nonsense"), "/show nonsense")
        assert out == "Unknown command '/show nonsense'. Type /? for help"
        term.line("/bye")
        assert term.wait_exit() == 0

    saved = httpx.post(cli_server.url("/api/show"), json={"model": "cli-saved"}).json()
    assert saved["system"] == "You are terse."
    assert [m["role"] for m in saved["messages"]] == ["system", "user", "assistant"]
    assert saved["messages"][1]["content"] == "1, 2,"

    # A saved conversation is shown when the model is run again, then the prompt.
    with repl(cli_server, tmp_path, "cli-saved") as term:
        first, answer = term.lines()[:2]
        assert first == ">>> 1, 2," and answer.strip() == saved["messages"][2]["content"].strip()
        term.send(Terminal.CTRL_D)
        assert term.wait_exit() == 0


def test_history_across_runs_and_nohistory(cli_server: ServerProcess, tmp_path: Path):
    with repl(cli_server, tmp_path) as term:
        term.submit("/set quiet")
        term.submit("/set wordwrap")
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
        term.send(Terminal.ENTER)
        term.wait_for(r"^Set 'verbose' mode\.$")
        term.send(Terminal.UP)  # this session's own lines are still recalled
        term.wait_for(r"^>>> /set verbose$")
        term.send(Terminal.CTRL_C)
        term.send(Terminal.CTRL_D)
        assert term.wait_exit() == 0
    assert path.read_text() == "/set quiet\n/set wordwrap\n/set quiet\n/bye\n"
