"""Helpers for the CLI tests: run `pollama` as a user would, in a pipe or in a real terminal.

The terminal is a pseudo-terminal from the stdlib (`os.forkpty`) whose output is rendered by
pyte, a pure-Python VT100 emulator, into a screen the tests read like tmux's capture-pane.
Chosen over tmux because it needs no system package or root in CI, shares no tmux server or
socket between tests running side by side, and answers prompt_toolkit's cursor-position
queries itself. Keys are real bytes through the tty's line discipline: Ctrl+C (0x03) becomes
SIGINT while a generation streams (cooked mode) and a key press while prompt_toolkit reads.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyte

from pollama.names import ModelName
from pollama.store import Store, gojson
from pollama.store.manifest import MEDIA_LICENSE, MEDIA_PARAMS, MEDIA_SYSTEM, MEDIA_TEMPLATE

BASE = "gemma3:270m-text"
# A plain continuation: every message's text in a row, so a base model just carries on
# (a counting prompt keeps counting, which makes a generation as long as a test needs).
CONTINUE_TEMPLATE = "{{ range .Messages }}{{ .Content }}{{ end }}"
# The same with thinking: the server infers <think> tags from it, and with think on the
# prompt ends with <think>, so the answer streams as thinking.
THINK_TEMPLATE = (
    "{{- range .Messages }}{{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}{{ .Content }}{{ end }}"
    "{{ if .Think }}<think>{{ end }}"
)
GREEDY = {"num_predict": 3, "temperature": 0, "seed": 7}


def install_cli_models(models: Path) -> None:
    """`cli-tiny` (3-token greedy continuations) and `cli-think` (the same, as thinking)."""
    derive_model(models, "cli-tiny", GREEDY, template=CONTINUE_TEMPLATE)
    derive_model(models, "cli-think", GREEDY, template=THINK_TEMPLATE)


def derive_model(
    models: Path,
    name: str,
    params: dict[str, Any],
    template: str | None = None,
    system: str | None = None,
) -> None:
    """Install `name` in the store: the bundled model's weights with other params/template
    and no license (so `/show modelfile` stays a screenful).

    Written through the store's own code (what /api/create ends with), so the tests get a
    model whose generations are short without the CLI needing an options flag.
    """
    store = Store(models, noprune=True)
    base = store.resolve(ModelName.parse(BASE))
    assert base is not None, f"{BASE} is not registered in {models}"
    replaced = {MEDIA_PARAMS, MEDIA_LICENSE} | ({MEDIA_TEMPLATE} if template is not None else set())
    layers = [layer for layer in base.manifest.layers if layer.media_type not in replaced]
    layers.append(store.write_blob(gojson.dumps(params, newline=True, sort_keys=True)).layer(MEDIA_PARAMS))
    if template is not None:
        layers.append(store.write_blob(template.encode()).layer(MEDIA_TEMPLATE))
    if system is not None:
        layers.append(store.write_blob(system.encode()).layer(MEDIA_SYSTEM))
    config = json.loads(store.blob_path(base.manifest.config.digest).read_bytes())
    store.write_manifest(ModelName.parse(name), config, layers)


def cli_env(base_url: str, home: Path, **extra: str) -> dict[str, str]:
    """The environment of a user's shell: only OLLAMA_HOST set, HOME of the test's own."""
    drop = ("OLLAMA_", "COLUMNS", "LINES")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(OLLAMA_HOST=base_url, HOME=str(home), PYTHONUNBUFFERED="1", TERM="xterm-256color", **extra)
    return env


def pollama(
    *args: str, env: dict[str, str], input: str | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """`pollama ARGS` with pipes for stdin/stdout/stderr (not a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "pollama", *args],
        env=env,
        input=input if input is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
    )


PROMPT_LINE = r"^(>>>|\.\.\.) "
EMPTY_PROMPT = r">>> Send a message \(/\? for help\)|\.\.\. Press Enter to send"


class _Screen(pyte.Screen):
    def __init__(self, cols: int, rows: int, reply: Callable[[str], None]):
        super().__init__(cols, rows)
        self._reply = reply

    def write_process_input(self, data: str) -> None:  # cursor-position and status reports
        self._reply(data)


class Terminal:
    """`pollama ARGS` on a pseudo-terminal of `cols` x `rows`, rendered by pyte."""

    ENTER = "\r"
    CTRL_C = "\x03"
    CTRL_D = "\x04"
    UP = "\x1b[A"

    def __init__(
        self, args: list[str], env: dict[str, str], cols: int = 80, rows: int = 200, *, python: bool = False
    ):
        """Run `pollama ARGS`, or with `python`, `python ARGS` (a snippet using pollama's parts)."""
        self.cols, self.rows = cols, rows
        self.raw = bytearray()
        self._lock = threading.Lock()
        self.screen = _Screen(cols, rows, self._answer)
        self.stream = pyte.ByteStream(self.screen)
        argv = [sys.executable, *([] if python else ["-m", "pollama"]), *args]
        pid, fd = os.forkpty()
        if pid == 0:  # child: size the terminal before the program looks at it, then exec
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
                # Start with SIGINT ignored, as a background job of a script (CI) is: the CLI
                # must take the signal back, or Ctrl+C would not stop a generation.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.returncode: int | None = None
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    # -- plumbing ------------------------------------------------------------------------

    def _answer(self, data: str) -> None:
        try:
            os.write(self.fd, data.encode())
        except OSError:
            pass

    def _pump(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            with self._lock:
                self.raw += data
                self.stream.feed(data)

    # -- what a person does --------------------------------------------------------------

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def line(self, text: str) -> None:
        """Type `text` and press Enter (a short pause first, as prompt_toolkit treats a burst
        of bytes that contains Enter as a paste)."""
        self.send(text)
        time.sleep(0.15)
        self.send(self.ENTER)

    def submit(self, text: str, timeout: float = 120) -> str:
        """Type a line at the prompt, press Enter and wait for the next empty prompt: whatever
        the line did (a command, an answer) is then on the screen, and the next keys never
        arrive while pollama is busy (the tty would echo them into the output)."""
        before = len(re.findall(PROMPT_LINE, self.text(), re.M))
        self.line(text)

        def ready(screen: str) -> bool:
            empty = re.fullmatch(EMPTY_PROMPT, screen.rsplit("\n", 1)[-1]) is not None
            return empty and len(re.findall(PROMPT_LINE, screen, re.M)) > before

        return self.wait_for(ready, timeout)

    def text(self) -> str:
        with self._lock:
            lines = [self.screen.buffer[y] for y in range(self.rows)]
            rendered = ["".join(line[x].data for x in range(self.cols)).rstrip() for line in lines]
        return "\n".join(rendered).rstrip("\n")

    def lines(self) -> list[str]:
        return self.text().split("\n")

    def wait_for(self, pattern: str | Callable[[str], bool], timeout: float = 120) -> str:
        """Wait until the screen matches `pattern` (a regex, or a predicate on the text)."""
        check = pattern if callable(pattern) else (lambda t: re.search(pattern, t, re.M) is not None)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text()
            if check(text):
                return text
            if self.poll() is not None:
                time.sleep(0.2)  # let the reader drain what the program wrote last
                text = self.text()
                if check(text):
                    return text
                raise AssertionError(f"pollama exited with {self.returncode}; screen:\n{text}")
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {pattern!r}; screen:\n{self.text()}")

    def wait_prompt(self, timeout: float = 120) -> str:
        """Wait for an empty `>>> ` prompt (its placeholder shows) on the last line."""
        return self.wait_for(lambda t: t.rsplit("\n", 1)[-1].startswith(">>> Send a message"), timeout)

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait_exit(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"pollama did not exit; screen:\n{self.text()}")
            time.sleep(0.1)
        self._reader.join(5)
        return self.returncode  # type: ignore[return-value]

    def close(self) -> None:
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.wait_exit()
        try:
            os.close(self.fd)
        except OSError:
            pass

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
