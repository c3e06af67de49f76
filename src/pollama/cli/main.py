"""`pollama` entry point: the argument parser, the version line, and how errors are shown.

Flags follow cobra's rules as ollama users know them: they may come before or after the
positional arguments (`pollama run gemma3 "hi" --verbose`), boolean flags also take
`--flag=false`, and `--think` alone means `--think=true` without eating the next word.
Every failure prints `Error: ...` on stderr and exits with 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from pollama import __version__
from pollama.cli.client import Client, ClientError, ServerUnreachable
from pollama.config import settings


def cmd_serve(_args: argparse.Namespace) -> int:
    import uvicorn

    from pollama.server.app import create_app

    cfg = settings()
    level = logging.DEBUG if cfg.debug else logging.INFO
    logging.basicConfig(
        level=level, format="time=%(asctime)s level=%(levelname)s source=%(name)s msg=%(message)s"
    )
    if cfg.debug < 2:
        logging.getLogger("pollama.llama").setLevel(logging.INFO if cfg.debug else logging.WARNING)
    uvicorn.run(
        create_app(cfg),
        host=cfg.host.host,
        port=cfg.host.port,
        log_level="debug" if cfg.debug else "warning",
        access_log=bool(cfg.debug),
        timeout_graceful_shutdown=10,
        server_header=False,
    )
    return 0


class UsageFailure(Exception):
    pass


class Parser(argparse.ArgumentParser):
    """argparse that reports errors as cobra does (`Error: ...`, exit 1) instead of exit 2."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments: -"):
            message = "unknown flag: " + message.removeprefix("unrecognized arguments: ").split()[0]
        elif message.endswith(": expected one argument"):
            message = "flag needs an argument: " + message.split()[1].rstrip(":")
        raise UsageFailure(f"{message}\nRun '{self.prog} --help' for usage.")


def _lazy(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """Import a verb's module only when it runs: `pollama list` should not load prompt_toolkit."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(module), name)(args)

    return run


def build_parser() -> tuple[Parser, dict[str, Parser]]:
    parser = Parser(prog="pollama", description="Large language model runner (Ollama-compatible)")
    parser.add_argument("-v", "--version", action="store_true", help="Show version information")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    verbs: dict[str, Parser] = {}

    def verb(
        name: str,
        fn: Callable[[argparse.Namespace], int],
        help_text: str,
        *,
        args: str = "",
        arity: tuple[int, int | None] = (0, 0),
        aliases: Sequence[str] = (),
    ) -> Parser:
        """A subcommand taking `arity` positional words, checked as cobra checks them."""
        p = sub.add_parser(name, help=help_text, description=help_text, aliases=list(aliases))
        p.prog = f"pollama {name}"
        p.usage = f"pollama {name} {args + ' ' if args else ''}[flags]"
        p.set_defaults(fn=fn, command=name, arity=arity)
        if arity != (0, 0):
            p.add_argument("words", nargs="*", help=argparse.SUPPRESS)
        for n in (name, *aliases):
            verbs[n] = p
        return p

    verb("serve", cmd_serve, "Start pollama", aliases=["start"])

    p = verb(
        "create", _lazy("pollama.cli.create", "cmd_create"), "Create a model", args="MODEL", arity=(1, 1)
    )
    p.add_argument("-f", "--file", help='Name of the Modelfile (default "Modelfile")')
    p.add_argument("-q", "--quantize", help="Quantize model to this level (e.g. q4_K_M)")

    p = verb(
        "show",
        _lazy("pollama.cli.show", "cmd_show"),
        "Show information for a model",
        args="MODEL",
        arity=(1, 1),
    )
    p.add_argument("--license", action="store_true", help="Show license of a model")
    p.add_argument("--modelfile", action="store_true", help="Show Modelfile of a model")
    p.add_argument("--parameters", action="store_true", help="Show parameters of a model")
    p.add_argument("--template", action="store_true", help="Show template of a model")
    p.add_argument("--system", action="store_true", help="Show system message of a model")
    p.add_argument("-v", "--verbose", action="store_true", help="Show detailed model information")

    p = verb(
        "run", _lazy("pollama.cli.run", "cmd_run"), "Run a model", args="MODEL [PROMPT]", arity=(1, None)
    )
    p.add_argument("--keepalive", help="Duration to keep a model loaded (e.g. 5m)")
    p.add_argument("--verbose", action="store_true", help="Show timings for response")
    p.add_argument("--insecure", action="store_true", help="Use an insecure registry")
    p.add_argument(
        "--nowordwrap", action="store_true", help="Don't wrap words to the next line automatically"
    )
    p.add_argument("--format", help="Response format (e.g. json)")
    p.add_argument(
        "--think",
        metavar="[=VALUE]",
        help="Enable thinking mode: true/false or high/medium/low for supported models",
    )
    p.add_argument("--hidethinking", action="store_true", help="Hide thinking output (if provided)")
    p.add_argument(
        "--truncate",
        action="store_true",
        default=None,
        help="For embedding models: truncate inputs exceeding context length (default: true). "
        "Set --truncate=false to error instead",
    )
    p.add_argument("--no-truncate", dest="truncate", action="store_false", help=argparse.SUPPRESS)
    p.add_argument(
        "--dimensions",
        type=int,
        default=0,
        help="Truncate output embeddings to specified dimension (embedding models only)",
    )

    p = verb(
        "stop", _lazy("pollama.cli.commands", "cmd_stop"), "Stop a running model", args="MODEL", arity=(1, 1)
    )

    p = verb(
        "pull",
        _lazy("pollama.cli.commands", "cmd_pull"),
        "Pull a model from a registry",
        args="MODEL",
        arity=(1, 1),
    )
    p.add_argument("--insecure", action="store_true", help="Use an insecure registry")

    p = verb(
        "push",
        _lazy("pollama.cli.commands", "cmd_push"),
        "Push a model to a registry",
        args="MODEL",
        arity=(1, 1),
    )
    p.add_argument("--insecure", action="store_true", help="Use an insecure registry")

    verb(
        "list",
        _lazy("pollama.cli.commands", "cmd_list"),
        "List models",
        args="[PREFIX]",
        arity=(0, 1),
        aliases=["ls"],
    )
    verb("ps", _lazy("pollama.cli.commands", "cmd_ps"), "List running models", args="[PREFIX]", arity=(0, 1))
    verb(
        "cp", _lazy("pollama.cli.commands", "cmd_cp"), "Copy a model", args="SOURCE DESTINATION", arity=(2, 2)
    )
    verb(
        "rm",
        _lazy("pollama.cli.commands", "cmd_rm"),
        "Remove a model",
        args="MODEL [MODEL...]",
        arity=(1, None),
    )

    return parser, verbs


_BOOL_WORDS = {
    "1": True,
    "t": True,
    "T": True,
    "TRUE": True,
    "true": True,
    "True": True,
    "0": False,
    "f": False,
    "F": False,
    "FALSE": False,
    "false": False,
    "False": False,
}


def _cobra_flags(verb: Parser, argv: list[str]) -> list[str]:
    """Rewrite cobra-only spellings into argparse ones: `--flag=bool`, a bare `--think`, and a
    flag value that starts with a dash (`--keepalive -1m`), which argparse takes for a flag."""
    bools: set[str] = set()
    valued: set[str] = set()
    for action in verb._actions:
        if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
            bools.update(action.option_strings)
        elif action.nargs is None and action.option_strings:
            valued.update(action.option_strings)
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        if token == "--":
            return out + argv[i - 1 :]
        name, eq, value = token.partition("=")
        if token == "--think":
            out.append("--think=true")
        elif token in valued and i < len(argv):
            out.append(f"{token}={argv[i]}")
            i += 1
        elif eq and name in bools:
            if value not in _BOOL_WORDS:
                raise UsageFailure(
                    f'invalid argument "{value}" for "{name}" flag: strconv.ParseBool: parsing "{value}": invalid syntax'
                )
            if _BOOL_WORDS[value]:
                out.append(name)
            elif name == "--truncate":
                out.append("--no-truncate")
        else:
            out.append(token)
    return out


def parse(argv: list[str]) -> tuple[argparse.Namespace, Parser]:
    parser, verbs = build_parser()
    position = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if position is None or argv[position] not in verbs:
        if position is not None:
            raise UsageFailure(f'unknown command "{argv[position]}" for "pollama"')
        return parser.parse_args(argv), parser
    head, name, rest = argv[:position], argv[position], argv[position + 1 :]
    top = parser.parse_args(head)
    verb = verbs[name]
    args = verb.parse_intermixed_args(_cobra_flags(verb, rest))
    args.version = top.version
    _positionals(args)
    return args, verb


def _arity_error(lo: int, hi: int | None, got: int) -> str | None:
    """cobra's ExactArgs / MinimumNArgs / MaximumNArgs / RangeArgs messages."""
    if lo <= got and (hi is None or got <= hi):
        return None
    if hi is None:
        return f"requires at least {lo} arg(s), only received {got}"
    if lo == hi:
        return f"accepts {lo} arg(s), received {got}"
    if lo == 0:
        return f"accepts at most {hi} arg(s), received {got}"
    return f"accepts between {lo} and {hi} arg(s), received {got}"


def _positionals(args: argparse.Namespace) -> None:
    """Check the count of positional words, then name them for the verb's function."""
    words: list[str] = getattr(args, "words", [])
    problem = _arity_error(*args.arity, len(words))
    if problem:
        raise UsageFailure(problem)
    if args.command == "run":
        args.model, args.prompt = words[0], words[1:]
    elif args.command in ("list", "ls", "ps"):
        args.prefix = words[0] if words else None
    elif args.command == "cp":
        args.source, args.destination = words
    elif args.command == "rm":
        args.models = words
    elif words:
        args.model = words[0]


def print_version() -> int:
    try:
        server = Client().get("/api/version")
        version = server.get("pollama_version") or server.get("version", "")
    except (ServerUnreachable, ClientError):
        print("Warning: could not connect to a running pollama instance")
        version = ""
    if version:
        print(f"pollama version is {version}")
    if version != __version__:
        print(f"Warning: client version is {__version__}")
    return 0


def explain(exc: ClientError) -> str:
    if exc.route_missing:
        return (
            f"the pollama server at {settings().host.client_url} does not support {exc.method} {exc.path} "
            f"({exc}); it may be older than this client"
        )
    if exc.model_missing and "pollama pull" not in str(exc) and "pollama list" not in str(exc):
        return f"{exc}\nTry 'pollama pull' to download it, or 'pollama list' to see the installed models."
    return str(exc)


def main(argv: Sequence[str] | None = None) -> int:
    from pollama.cli.show import UsageError

    argv = list(sys.argv[1:] if argv is None else argv)
    # A process started as a background job of a script (`cmd &`) inherits SIGINT ignored, and
    # Python then never raises KeyboardInterrupt: Ctrl+C could not stop a generation. Go's
    # signal.Notify takes the signal back for ollama; do the same.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        args, _ = parse(argv)
        if args.version:
            return print_version()
        if not getattr(args, "fn", None):
            build_parser()[0].print_help()
            return 0
        if args.command not in ("serve", "start"):
            Client().heartbeat()
        return args.fn(args)
    except (UsageFailure, UsageError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
    except ServerUnreachable as exc:
        print(
            f"Error: pollama server not responding - could not connect to pollama server at {exc}, "
            "run 'pollama serve' to start it",
            file=sys.stderr,
        )
    except ClientError as exc:
        print(f"Error: {explain(exc)}", file=sys.stderr)
    except BrokenPipeError:
        # `pollama show -v | head`: the reader left. Exit quietly, as ollama does when SIGPIPE
        # ends it; point stdout at /dev/null so the interpreter's final flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        print(f"Error: {exc.strerror or exc}{where}", file=sys.stderr)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    return 1
