"""The interactive `pollama run` session: ollama's `>>>` REPL on prompt_toolkit.

Same prompts, placeholders, slash commands, messages and multi-line rules as ollama's
cmd/interactive.go, so the muscle memory carries over. The conversation is the list of
messages sent whole to /api/chat each turn (the server's prompt cache makes that cheap).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import fields, replace
from enum import Enum
from pathlib import Path
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.application import get_app
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import History
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

from pollama.api.options import Options
from pollama.cli.client import Client, ClientError
from pollama.cli.commands import cmd_list
from pollama.cli.run import RunOptions, chat, extract_images, image_paths, load
from pollama.cli.show import go_value, render_info
from pollama.config import settings

HISTORY_LIMIT = 100


def err(*lines: str) -> None:
    for line in lines:
        print(line, file=sys.stderr)


USAGE = [
    "Available Commands:",
    "  /set            Set session variables",
    "  /show           Show model information",
    "  /load <model>   Load a session or model",
    "  /save <model>   Save your current session",
    "  /clear          Clear session context",
    "  /bye            Exit",
    "  /?, /help       Help for a command",
    "  /? shortcuts    Help for keyboard shortcuts",
    "",
    'Use """ to begin a multi-line message.',
]
USAGE_SET = [
    "Available Commands:",
    "  /set parameter ...     Set a parameter",
    "  /set system <string>   Set system message",
    "  /set history           Enable history",
    "  /set nohistory         Disable history",
    "  /set wordwrap          Enable wordwrap",
    "  /set nowordwrap        Disable wordwrap",
    "  /set format json       Enable JSON mode",
    "  /set noformat          Disable formatting",
    "  /set verbose           Show LLM stats",
    "  /set quiet             Disable LLM stats",
    "  /set think             Enable thinking",
    "  /set nothink           Disable thinking",
    "",
]
USAGE_SHORTCUTS = [
    "Available keyboard shortcuts:",
    "  Ctrl + a            Move to the beginning of the line (Home)",
    "  Ctrl + e            Move to the end of the line (End)",
    "   Alt + b            Move back (left) one word",
    "   Alt + f            Move forward (right) one word",
    "  Ctrl + k            Delete the sentence after the cursor",
    "  Ctrl + u            Delete the sentence before the cursor",
    "  Ctrl + w            Delete the word before the cursor",
    "",
    "  Ctrl + l            Clear the screen",
    "  Ctrl + g            Open default editor to compose a prompt",
    "  Ctrl + c            Stop the model from responding",
    "  Ctrl + d            Exit pollama (/bye)",
    "",
]
USAGE_SHOW = [
    "Available Commands:",
    "  /show info         Show details for this model",
    "  /show license      Show model license",
    "  /show modelfile    Show Modelfile for this model",
    "  /show parameters   Show parameters for this model",
    "  /show system       Show system message",
    "  /show template     Show prompt template",
    "",
]
USAGE_PARAMETERS = [
    "Available Parameters:",
    "  /set parameter seed <int>             Random number seed",
    "  /set parameter num_predict <int>      Max number of tokens to predict",
    "  /set parameter top_k <int>            Pick from top k num of tokens",
    "  /set parameter top_p <float>          Pick token based on sum of probabilities",
    "  /set parameter min_p <float>          Pick token based on top token probability * min_p",
    "  /set parameter num_ctx <int>          Set the context size",
    "  /set parameter temperature <float>    Set creativity level",
    "  /set parameter repeat_penalty <float> How strongly to penalize repetitions",
    "  /set parameter repeat_last_n <int>    Set how far back to look for repetitions",
    "  /set parameter num_gpu <int>          The number of layers to send to the GPU",
    "  /set parameter stop <string> <string> ...   Set the stop parameters",
    "",
]

_OPTION_TYPES = {f.name: str(f.type) for f in fields(Options)}
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


class ParameterError(ValueError):
    pass


def parse_parameter(name: str, values: list[str]) -> Any:
    """ollama's api.FormatParams for one `/set parameter` line, with its error texts."""
    kind = _OPTION_TYPES.get(name)
    if kind is None:
        raise ParameterError(f"unknown parameter '{name}'")
    shown = "[" + " ".join(values) + "]"
    first = values[0]
    if kind == "int":
        try:
            return int(first, 10)
        except ValueError:
            raise ParameterError(f"invalid int value {shown}") from None
    if kind == "float":
        try:
            return float(first)
        except ValueError:
            raise ParameterError(f"invalid float value {shown}") from None
    if kind.startswith("bool"):
        if first in _TRUE:
            return True
        if first in _FALSE:
            return False
        raise ParameterError(f"invalid bool value {shown}")
    return list(values)  # stop: every word is one stop sequence


def go_quote(text: str) -> str:
    """Go's %q, enough for error messages."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class OllamaHistory(History):
    """ollama's ~/.ollama/history: one entry per line, the last 100 kept, rewritten atomically.

    As in ollama, disabling history (OLLAMA_NOHISTORY, `/set nohistory`) stops saving to the
    file; the lines of this session can still be recalled with the arrow keys.
    """

    def __init__(self, path: Path, enabled: bool = True):
        super().__init__()
        self.path = path
        self.enabled = enabled

    def _read(self) -> list[str]:
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        return [line.strip() for line in text.splitlines() if line.strip()]

    def load_history_strings(self) -> Iterable[str]:
        return list(reversed(self._read()))  # prompt_toolkit wants the newest first

    def append_string(self, string: str) -> None:
        if self._loaded_strings and self._loaded_strings[0] == string:
            return  # ollama skips a repeat of the latest entry
        super().append_string(string)

    def store_string(self, string: str) -> None:
        lines = [line.strip() for line in string.splitlines() if line.strip()]
        if not lines or not self.enabled:
            return
        entries = (self._read() + lines)[-HISTORY_LIMIT:]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".history-")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write("".join(e + "\n" for e in entries))
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except OSError:
            pass  # history is a convenience; never let it break the session


class Multiline(Enum):
    NONE = 0
    PROMPT = 1
    SYSTEM = 2


class Repl:
    def __init__(self, client: Client, opts: RunOptions):
        self.client = client
        self.opts = opts
        self.history = OllamaHistory(settings().home / "history", enabled=not settings().nohistory)
        self.interrupted_text = ""
        self.session: PromptSession[str] = PromptSession(
            history=self.history, key_bindings=self._bindings(), enable_history_search=False
        )

    def _bindings(self) -> KeyBindings:
        kb = KeyBindings()

        @kb.add("c-c")
        def _interrupt(event: KeyPressEvent) -> None:
            self.interrupted_text = event.app.current_buffer.text
            event.app.exit(exception=KeyboardInterrupt, style="class:aborting")

        @kb.add("c-g")
        def _editor(event: KeyPressEvent) -> None:
            # ollama's order: OLLAMA_EDITOR, then VISUAL, then EDITOR (prompt_toolkit reads the last two)
            editor = os.environ.get("OLLAMA_EDITOR", "").strip().strip("\"'")
            if editor:
                os.environ["VISUAL"] = editor
            event.app.current_buffer.open_in_editor()

        return kb

    def _read(self, alt: bool) -> str:
        prompt, hint = ("... ", "Press Enter to send") if alt else (">>> ", "Send a message (/? for help)")

        def placeholder() -> FormattedText:
            # Only while typing: the line left on screen after Enter, Ctrl+C or Ctrl+D is bare.
            return FormattedText([] if get_app().is_done else [("fg:ansibrightblack", hint)])

        return self.session.prompt(prompt, placeholder=placeholder)

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> int:
        sb: list[str] = []
        multiline = Multiline.NONE
        while True:
            try:
                line = self._read(multiline is not Multiline.NONE)
            except EOFError:
                print()
                return 0
            except KeyboardInterrupt:
                if not self.interrupted_text:
                    print("Use Ctrl + d or /bye to exit.")
                sb, multiline = [], Multiline.NONE
                continue

            if multiline is not Multiline.NONE:
                done = line.endswith('"""')
                sb.append(line[:-3] if done else line)
                if not done:
                    sb.append("\n")
                    continue
                if multiline is Multiline.SYSTEM:
                    self._set_system("".join(sb))
                    sb = []
                multiline = Multiline.NONE
            elif line.startswith('"""'):
                rest = line[3:]
                done = rest.endswith('"""')
                sb.append(rest[:-3] if done else rest)
                if not done:
                    sb.append("\n")
                    multiline = Multiline.PROMPT
                    continue
            elif line.startswith("/"):
                words = line.split()
                command = words[0] if words else "/"
                if command in ("/bye", "/exit"):
                    return 0
                if self.opts.multimodal and any(p.startswith(command) for p in image_paths(line)):
                    sb.append(line)  # a path to an image, not a command
                else:
                    result = self._command(command, words, line)
                    if isinstance(result, Multiline):  # /set system """ opens a block
                        multiline = result
                        sb = [self._pending_system, "\n"] if self._pending_system else []
                    continue
            else:
                sb.append(line)

            text = "".join(sb)
            if text and multiline is Multiline.NONE:
                self._send(text)
                sb = []

    def _send(self, text: str) -> None:
        message: dict[str, Any] = {"role": "user", "content": text}
        if self.opts.multimodal:
            message["content"], images = extract_images(text)
            if images:
                message["images"] = images
        self.opts.messages.append(message)
        try:
            reply = chat(self.client, self.opts)
        except ClientError as exc:
            self.opts.messages.pop()
            print(f"Error: {exc}")
            return
        if reply is None:  # Ctrl+C: forget the unanswered question, as if it was never asked
            self.opts.messages.pop()
            self.client = Client()  # a fresh connection pool after an interrupted read
            return
        self.opts.messages.append(reply)

    # -- slash commands -------------------------------------------------------------------

    def _command(self, command: str, words: list[str], line: str) -> Multiline | None:
        if command == "/list":
            import argparse

            cmd_list(argparse.Namespace(prefix=words[1] if len(words) > 1 else None))
        elif command == "/load":
            self._load(words)
        elif command == "/save":
            self._save(words)
        elif command == "/clear":
            self.opts.messages = []
            if self.opts.system:
                self.opts.messages.append({"role": "system", "content": self.opts.system})
            print("Cleared session context")
        elif command == "/set":
            return self._set(words)
        elif command == "/show":
            self._show(words)
        elif command in ("/help", "/?"):
            topic = words[1] if len(words) > 1 else ""
            if topic in ("set", "/set"):
                err(*USAGE_SET)
            elif topic in ("show", "/show"):
                err(*USAGE_SHOW)
            elif topic in ("shortcut", "shortcuts"):
                err(*USAGE_SHORTCUTS)
            else:
                err(*USAGE)
                if self.opts.multimodal:
                    err("Use /path/to/file to include .jpg, .png, or .webp images.")
                err("")
        else:
            print(f"Unknown command '{command}'. Type /? for help")
        return None

    def _load(self, words: list[str]) -> None:
        if len(words) != 2:
            print("Usage:\n  /load <modelname>")
            return
        before = replace(self.opts, messages=list(self.opts.messages), options=dict(self.opts.options))
        self.opts.model, self.opts.messages = words[1], []
        print(f"Loading model '{self.opts.model}'")
        try:
            info = self.client.post("/api/show", {"model": self.opts.model})
            caps = info.get("capabilities") or []
            if not self.opts.think_explicit:
                self.opts.think = True if "thinking" in caps else None
            self.opts.multimodal = "vision" in caps or bool(info.get("projector_info"))
            self.opts.parent_model = (info.get("details") or {}).get("parent_model", "")
            load(self.client, self.opts)
        except ClientError as exc:
            if "not found" in str(exc):
                print(f"Couldn't find model '{self.opts.model}'")
            else:
                print(f"error: {exc}")
            self.opts = before

    def _save(self, words: list[str]) -> None:
        if len(words) != 2:
            print("Usage:\n  /save <modelname>")
            return
        name = words[1]
        body: dict[str, Any] = {"model": name, "from": self._save_base()}
        if self.opts.system:
            body["system"] = self.opts.system
        if self.opts.options:
            body["parameters"] = self.opts.options
        if self.opts.messages:
            body["messages"] = [{k: v for k, v in m.items() if k != "images"} for m in self.opts.messages]
        try:
            for _ in self.client.stream("/api/create", body):
                pass
        except ClientError as exc:
            if "invalid model name" in str(exc):
                print(f"error: The model name '{name}' is invalid")
            else:
                print(f"error: {exc}")
            return
        print(f"Created new model '{name}'")

    def _save_base(self) -> str:
        from pollama.names import ModelName

        parent = self.opts.parent_model
        return parent if parent and ModelName.is_valid(parent) else self.opts.model

    def _set_system(self, text: str) -> None:
        self.opts.system = text
        message = {"role": "system", "content": text}
        if self.opts.messages and self.opts.messages[-1]["role"] == "system":
            self.opts.messages[-1] = message
        else:
            self.opts.messages.append(message)
        print("Set system message.")

    _pending_system = ""

    def _set(self, words: list[str]) -> Multiline | None:
        if len(words) < 2:
            err(*USAGE_SET)
            return None
        what = words[1]
        opts = self.opts
        if what == "history":
            self.history.enabled = True
        elif what == "nohistory":
            self.history.enabled = False
        elif what in ("wordwrap", "nowordwrap"):
            opts.word_wrap = what == "wordwrap"
            print(f"Set '{what}' mode.")
        elif what in ("verbose", "quiet"):
            opts.verbose = what == "verbose"
            print(f"Set '{what}' mode.")
        elif what == "think":
            level = words[2] if len(words) > 2 else ""
            opts.think, opts.think_explicit = (level or True), True
            self._warn_no_thinking()
            print(f"Set 'think' mode to '{level}'." if level else "Set 'think' mode.")
        elif what == "nothink":
            opts.think, opts.think_explicit = False, True
            self._warn_no_thinking()
            print("Set 'nothink' mode.")
        elif what == "format":
            if len(words) < 3 or words[2] != "json":
                print("Invalid or missing format. For 'json' mode use '/set format json'")
            else:
                opts.format = "json"
                print("Set format to 'json' mode.")
        elif what == "noformat":
            opts.format = ""
            print("Disabled format.")
        elif what == "parameter":
            if len(words) < 4:
                err(*USAGE_PARAMETERS)
                return None
            try:
                value = parse_parameter(words[2], words[3:])
            except ParameterError as exc:
                print(f"Couldn't set parameter: {go_quote(str(exc))}")
                return None
            print(f"Set parameter '{words[2]}' to '{', '.join(words[3:])}'")
            opts.options[words[2]] = value
        elif what == "system":
            if len(words) < 3:
                err(*USAGE_SET)
                return None
            text = " ".join(words[2:])
            if text.startswith('"""'):
                text = text[3:]
                if not text.endswith('"""'):
                    self._pending_system = text
                    return Multiline.SYSTEM
                text = text[:-3]
            self._set_system(text)
        else:
            print(f"Unknown command '/set {what}'. Type /? for help")
        return None

    def _warn_no_thinking(self) -> None:
        try:
            info = self.client.post("/api/show", {"model": self.opts.model})
        except ClientError:
            return
        if "thinking" not in (info.get("capabilities") or []):
            print(f'warning: model "{self.opts.model}" does not support thinking output', file=sys.stderr)

    def _show(self, words: list[str]) -> None:
        if len(words) < 2:
            err(*USAGE_SHOW)
            return
        opts = self.opts
        body: dict[str, Any] = {"model": opts.model}
        if opts.system:
            body["system"] = opts.system
        if opts.options:
            body["options"] = opts.options
        try:
            resp = self.client.post("/api/show", body)
        except ClientError as exc:
            print(f"error: couldn't get model: {exc}")
            return
        what = words[1]
        if what == "info":
            render_info(resp, False, sys.stderr)
        elif what == "license":
            print(resp.get("license") or "No license was specified for this model.")
        elif what == "modelfile":
            print(resp.get("modelfile", ""))
        elif what == "parameters":
            print("Model defined parameters:")
            if not resp.get("parameters"):
                print("  No additional parameters were specified for this model.")
            else:
                for line in resp["parameters"].split("\n"):
                    print(f"  {line}")
            print()
            if opts.options:
                print("User defined parameters:")
                for key, value in opts.options.items():
                    print(f"  {key:<30} {go_value(value)}")
                print()
        elif what == "system":
            system = opts.system or resp.get("system")
            print(system + "\n" if system else "No system message was specified for this model.")
        elif what == "template":
            print(resp.get("template") or "No prompt template was specified for this model.")
        else:
            print(f"Unknown command '/show {what}'. Type /? for help")
