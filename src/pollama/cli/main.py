"""`pollama` entry point: argument parsing and the verbs shared with `ollama`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from pollama import __version__
from pollama.cli.client import Client, ClientError, ServerUnreachable
from pollama.cli.format import human_bytes, human_duration_until, human_since, table
from pollama.config import settings


def cmd_serve(_args: argparse.Namespace) -> int:
    from pollama.server.serve import serve

    return serve()


def cmd_list(args: argparse.Namespace) -> int:
    models = Client().get("/api/tags")["models"]
    rows = [
        [m["name"], m["digest"][:12], human_bytes(m["size"]), human_since(m["modified_at"])]
        for m in models
        if not args.prefix or m["name"].startswith(args.prefix)
    ]
    print(table(["NAME", "ID", "SIZE", "MODIFIED"], rows))
    return 0


def cmd_ps(args: argparse.Namespace) -> int:
    models = Client().get("/api/ps")["models"]
    rows = []
    for m in models:
        if args.prefix and not m["name"].startswith(args.prefix):
            continue
        vram = m.get("size_vram", 0)
        processor = "100% CPU" if not vram else ("100% GPU" if vram >= m["size"] else "mixed")
        rows.append(
            [
                m["name"],
                m["digest"][:12],
                human_bytes(m["size"]),
                processor,
                str(m.get("context_length", "")),
                human_duration_until(m.get("expires_at")),
            ]
        )
    print(table(["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"], rows))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    client = Client()
    loaded = {m["name"] for m in client.get("/api/ps")["models"]}
    wanted = args.model if ":" in args.model else f"{args.model}:latest"
    if args.model not in loaded and wanted not in loaded:
        print(f'Error: couldn\'t find model "{args.model}" to stop', file=sys.stderr)
        return 1
    client.post("/api/generate", {"model": args.model, "keep_alive": 0})
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    prompt = " ".join(args.prompt)
    if not sys.stdin.isatty():
        piped = sys.stdin.read()
        prompt = f"{piped} {prompt}".strip() if prompt else piped
    elif not prompt:
        print("Error: interactive mode needs a prompt for now: pollama run MODEL PROMPT", file=sys.stderr)
        return 1
    body: dict = {"model": args.model, "messages": [{"role": "user", "content": prompt}]}
    if args.keepalive is not None:
        body["keep_alive"] = args.keepalive
    if args.format:
        body["format"] = args.format
    last: dict = {}
    for chunk in Client().stream("/api/chat", body):
        sys.stdout.write(chunk.get("message", {}).get("content", ""))
        sys.stdout.flush()
        last = chunk
    sys.stdout.write("\n")
    if args.verbose and last:
        print_stats(last)
    return 0


def print_stats(final: dict) -> None:
    def rate(count: int, ns: int) -> str:
        return f"{count / (ns / 1e9):.2f} tokens/s" if ns else "n/a"

    lines = [
        ("total duration", f"{final.get('total_duration', 0) / 1e9:.9g}s"),
        ("load duration", f"{final.get('load_duration', 0) / 1e6:.4g}ms"),
        ("prompt eval count", f"{final.get('prompt_eval_count', 0)} token(s)"),
        ("prompt eval duration", f"{final.get('prompt_eval_duration', 0) / 1e6:.4g}ms"),
        ("prompt eval rate", rate(final.get("prompt_eval_count", 0), final.get("prompt_eval_duration", 0))),
        ("eval count", f"{final.get('eval_count', 0)} token(s)"),
        ("eval duration", f"{final.get('eval_duration', 0) / 1e6:.4g}ms"),
        ("eval rate", rate(final.get("eval_count", 0), final.get("eval_duration", 0))),
    ]
    for label, value in lines:
        print(f"{label + ':':<22}{value}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pollama", description="Large language model runner (Ollama-compatible)")
    parser.add_argument("-v", "--version", action="store_true", help="Show version information")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def verb(name: str, fn: Callable[[argparse.Namespace], int], help_text: str, aliases: Sequence[str] = ()):
        p = sub.add_parser(name, help=help_text, aliases=list(aliases))
        p.set_defaults(fn=fn)
        return p

    verb("serve", cmd_serve, "Start pollama", aliases=["start"])
    p = verb("run", cmd_run, "Run a model")
    p.add_argument("model")
    p.add_argument("prompt", nargs="*")
    p.add_argument("--keepalive", help="Duration to keep a model loaded (e.g. 5m)")
    p.add_argument("--verbose", action="store_true", help="Show timings for response")
    p.add_argument("--format", help='Response format (e.g. "json")')
    p = verb("list", cmd_list, "List models", aliases=["ls"])
    p.add_argument("prefix", nargs="?")
    p = verb("ps", cmd_ps, "List running models")
    p.add_argument("prefix", nargs="?")
    p = verb("stop", cmd_stop, "Stop a running model")
    p.add_argument("model")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        print(f"pollama version is {__version__}")
        return 0
    if not getattr(args, "fn", None):
        parser.print_help()
        return 0
    try:
        return args.fn(args)
    except ServerUnreachable as exc:
        print(f"Error: could not connect to pollama at {exc}. Is it running? Start it with: pollama serve", file=sys.stderr)
        return 1
    except ClientError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
