"""`pollama run`: one-shot generation, embeddings, and the hand-off to the interactive REPL.

The flow is ollama's RunHandler: ask /api/show about the model (pulling it when it is
missing), print the vector for an embedding model, otherwise either stream one
/api/generate answer (a prompt argument, piped stdin, or stdout not a terminal) or load
the model first, so that errors show before the first `>>>`, and open the REPL.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pollama.cli.client import Client, ClientError
from pollama.cli.commands import pull
from pollama.cli.display import Display, summary
from pollama.cli.progress import Spinner
from pollama.cli.show import UsageError
from pollama.config import DurationError, parse_go_duration

THINK_VALUES = {"": True, "true": True, "false": False, "high": "high", "medium": "medium", "low": "low"}


@dataclass
class RunOptions:
    model: str
    parent_model: str = ""
    prompt: str = ""
    messages: list[dict[str, Any]] = field(default_factory=list)
    word_wrap: bool = True
    format: str = ""
    system: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    multimodal: bool = False
    keep_alive: str | None = None
    think: bool | str | None = None
    think_explicit: bool = False
    hide_thinking: bool = False
    verbose: bool = False
    insecure: bool = False

    def body(self) -> dict[str, Any]:
        """The fields every inference request of this session carries."""
        out: dict[str, Any] = {"model": self.model, "options": self.options}
        if self.format:
            out["format"] = self.format
        if self.keep_alive is not None:
            out["keep_alive"] = self.keep_alive
        if self.think is not None:
            out["think"] = self.think
        return out


class ModelMissing(ClientError):
    """The model is not installed and could not be pulled."""


# -- images for vision models --------------------------------------------------------------

_IMAGE_PATH = re.compile(r"(?:[a-zA-Z]:)?(?:\./|/|\\)[\S\\ ]+?\.(?i:jpg|jpeg|png|webp)\b")
_UNESCAPE = [
    ("\\ ", " "),
    ("\\(", "("),
    ("\\)", ")"),
    ("\\[", "["),
    ("\\]", "]"),
    ("\\{", "{"),
    ("\\}", "}"),
    ("\\$", "$"),
    ("\\&", "&"),
    ("\\;", ";"),
    ("\\'", "'"),
    ("\\\\", "\\"),
    ("\\*", "*"),
    ("\\?", "?"),
    ("\\~", "~"),
    ("'\\''", "'"),
]


def image_paths(text: str) -> list[str]:
    return _IMAGE_PATH.findall(text)


def _image_kind(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def extract_images(text: str) -> tuple[str, list[str]]:
    """Attach the image files a prompt names (as ollama does for vision models)."""
    images: list[str] = []
    for found in image_paths(text):
        path = found
        for old, new in _UNESCAPE:
            path = path.replace(old, new)
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            continue
        if _image_kind(data[:16]) is None:
            raise UsageError(f"invalid image type: {path}")
        if len(data) > 100 * 1024 * 1024:
            raise UsageError("file size exceeds maximum limit (100MB)")
        print(f"Added image '{path}'", file=sys.stderr)
        for variant in (f"'{path}'", f"'{found}'", found):
            text = text.replace(variant, "")
        images.append(base64.b64encode(data).decode())
    return text.strip(), images


# -- requests ----------------------------------------------------------------------------


def show(client: Client, name: str, insecure: bool = False, *, pull_missing: bool = True) -> dict[str, Any]:
    """/api/show, pulling the model first when the server does not have it."""
    try:
        return client.post("/api/show", {"model": name})
    except ClientError as exc:
        if exc.route_missing:
            return {}  # a server without /api/show: run with no model facts; loading still checks the name
        if exc.status != 404 or not pull_missing:
            raise
        missing = exc
    try:
        pull(client, name, insecure)
    except ClientError as exc:
        if exc.route_missing:  # the server cannot pull: say what the user can do instead
            raise ModelMissing(
                404,
                f"{missing}; install it with 'pollama pull {name}', "
                "or see the installed models with 'pollama list'",
            ) from None
        raise ModelMissing(
            exc.status, f"{exc}\n'{name}' is not installed here; 'pollama list' shows the installed models"
        ) from None
    return client.post("/api/show", {"model": name})


def load(client: Client, opts: RunOptions) -> None:
    """An empty generate request loads the model (ollama's loadOrUnloadModel)."""
    body: dict[str, Any] = {"model": opts.model}
    if opts.keep_alive is not None:
        body["keep_alive"] = opts.keep_alive
    if opts.think is not None:
        body["think"] = opts.think
    with Spinner():
        client.post("/api/generate", body)


def _consume(stream: Any, display: Display, spinner: Spinner, opts: RunOptions, chat: bool) -> dict[str, Any]:
    """Print a streamed answer; return the final object with the whole text under `_content`."""
    latest: dict[str, Any] = {}
    content: list[str] = []
    for chunk in stream:
        latest = chunk
        piece = chunk.get("message", {}) if chat else chunk
        text, thought = piece.get("content" if chat else "response", ""), piece.get("thinking", "")
        if text or not opts.hide_thinking:
            spinner.stop()
        display.thinking(thought, opts.hide_thinking)
        if text or piece.get("tool_calls"):
            display.content(text)
        content.append(text)
        if piece.get("tool_calls"):
            display.tool_calls(piece["tool_calls"])
    latest["_content"] = "".join(content)
    latest["_thinking"] = display.thinking_text
    return latest


def chat(client: Client, opts: RunOptions) -> dict[str, Any] | None:
    """One REPL turn over /api/chat; None when Ctrl+C cancelled it."""
    display = Display(opts.word_wrap)
    body = {**opts.body(), "messages": opts.messages}
    spinner = Spinner()
    try:
        spinner.__enter__()
        with closing(client.stream("/api/chat", body)) as stream:
            final = _consume(stream, display, spinner, opts, chat=True)
    except KeyboardInterrupt:
        spinner.stop()
        sys.stdout.write("\n")
        sys.stdout.flush()
        return None
    finally:
        spinner.stop()
    if opts.messages:
        sys.stdout.write("\n\n")
        sys.stdout.flush()
    if opts.verbose:
        summary(final)
    message: dict[str, Any] = {
        "role": final.get("message", {}).get("role", "assistant"),
        "content": final["_content"],
    }
    if final["_thinking"]:
        message["thinking"] = final["_thinking"]
    return message


def generate(client: Client, opts: RunOptions) -> int:
    """The one-shot answer over /api/generate, as `ollama run MODEL PROMPT` does."""
    display = Display(opts.word_wrap)
    body: dict[str, Any] = {**opts.body(), "prompt": opts.prompt}
    if opts.system:
        body["system"] = opts.system
    if opts.multimodal:
        body["prompt"], images = extract_images(opts.prompt)
        if images:
            body["images"] = images
    spinner = Spinner()
    try:
        spinner.__enter__()
        with closing(client.stream("/api/generate", body)) as stream:
            final = _consume(stream, display, spinner, opts, chat=False)
    except KeyboardInterrupt:
        return 0  # ollama: a cancelled one-shot answer is not an error
    finally:
        spinner.stop()
    if opts.prompt:
        sys.stdout.write("\n\n")
        sys.stdout.flush()
    if final.get("done") and opts.verbose:
        summary(final)
    return 0


def embed(client: Client, name: str, text: str, args: argparse.Namespace, keep_alive: str | None) -> int:
    body: dict[str, Any] = {"model": name, "input": text}
    if keep_alive is not None:
        body["keep_alive"] = keep_alive
    if args.truncate is not None:
        body["truncate"] = args.truncate
    if args.dimensions:
        body["dimensions"] = args.dimensions
    resp = client.post("/api/embed", body)
    vectors = resp.get("embeddings") or []
    if not vectors:
        raise ClientError(0, "no embeddings returned")
    print(json.dumps(vectors[0], separators=(",", ":")))
    return 0


# -- the verb ----------------------------------------------------------------------------


def _stdin_is_tty() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def cmd_run(args: argparse.Namespace) -> int:
    opts = RunOptions(
        model=args.model,
        format=args.format or "",
        hide_thinking=args.hidethinking,
        verbose=args.verbose,
        insecure=args.insecure,
        word_wrap=not args.nowordwrap,
    )
    if args.think is not None:
        if args.think not in THINK_VALUES:
            raise UsageError(
                f'invalid value for --think: "{args.think}" (must be true, false, high, medium, or low)'
            )
        opts.think, opts.think_explicit = THINK_VALUES[args.think], True
    if args.keepalive:
        try:
            parse_go_duration(args.keepalive)
        except DurationError as exc:
            raise UsageError(str(exc)) from None
        opts.keep_alive = args.keepalive

    interactive = True
    prompts = list(args.prompt)
    if not _stdin_is_tty():
        piped = sys.stdin.read()
        if piped:
            prompts.insert(0, piped)
        interactive = False
    opts.prompt = " ".join(prompts)
    if prompts:
        interactive = False
    if not sys.stdout.isatty():
        interactive = False

    client = Client()
    info = show(client, args.model, args.insecure)
    caps = info.get("capabilities") or []
    if not opts.think_explicit and "thinking" in caps:
        opts.think = True
    opts.multimodal = "vision" in caps or bool(info.get("projector_info"))
    opts.parent_model = (info.get("details") or {}).get("parent_model", "")

    if "embedding" in caps:
        if not opts.prompt:
            raise UsageError(
                f'embedding models require input text. Usage: pollama run {args.model} "your text here"'
            )
        return embed(client, args.model, opts.prompt, args, opts.keep_alive)

    if not interactive:
        return generate(client, opts)

    load(client, opts)
    display = Display(opts.word_wrap)
    for msg in info.get("messages") or []:  # the model's MESSAGE history, as a transcript
        if msg.get("role") == "user":
            print(f">>> {msg.get('content', '')}")
        elif msg.get("role") == "assistant":
            display.reset()
            display.write(msg.get("content", ""))
            print("\n")

    from pollama.cli.repl import Repl  # prompt_toolkit is only needed here

    return Repl(client, opts).run()
