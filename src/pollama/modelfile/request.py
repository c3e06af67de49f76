"""A parsed Modelfile as the fields of a structured create request (Ollama's
`Modelfile.CreateRequest`): FROM becomes `from` (a model name) or `files` (local files,
named relative to what FROM named), PARAMETERs become typed `parameters`, and so on.

Where files live differs between the CLI (paths on the user's disk, hashed and uploaded)
and the server (`@sha256:` blob references), so the caller passes `resolve`: given an
instruction and its argument it returns `{name: digest}` for a file reference, or None
when the argument is not one (for FROM, a model name).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pollama.modelfile import params as P
from pollama.modelfile.parser import Command, Modelfile, ModelfileError

Resolver = Callable[[Command], dict[str, str] | None]

# Go's golang.org/x/mod/semver: vMAJOR[.MINOR[.PATCH[-pre][+build]]]
_IDENT = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER = re.compile(
    r"v(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*)"
    rf"(?:-{_IDENT}(?:\.{_IDENT})*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)?)?"
)


def check_requires(value: str) -> str:
    """`0.14.0` or `v0.14.0` -> `0.14.0`; ValueError otherwise (Ollama's message)."""
    text = value if value.startswith("v") else "v" + value
    if not _SEMVER.fullmatch(text):
        raise ValueError("requires must be a valid semver (e.g. 0.14.0)")
    return text[1:]


def to_request(mf: Modelfile, resolve: Resolver) -> tuple[dict[str, Any], list[str]]:
    """The create-request fields a Modelfile stands for. Raises ModelfileError (with the
    line) for values that parse but do not make sense: bad parameter values, two model
    names, a bad REQUIRES. Deprecated parameters are dropped, with a warning returned."""
    req: dict[str, Any] = {}
    files: dict[str, str] = {}
    adapters: dict[str, str] = {}
    params: dict[str, Any] = {}
    licenses: list[str] = []
    messages: list[dict[str, str]] = []
    warnings: list[str] = []
    for cmd in mf.commands:
        kind = cmd.instruction
        if kind == "from":
            found = resolve(cmd)
            if found is None:
                if "from" in req and req["from"] != cmd.value:
                    raise ModelfileError(
                        f'only one FROM may name a model ("{req["from"]}" and "{cmd.value}")', cmd.line
                    )
                req["from"] = cmd.value
            else:
                files.update(found)
        elif kind == "adapter":
            found = resolve(cmd)
            if found is None:
                raise ModelfileError(f"ADAPTER {cmd.value}: no such file", cmd.line)
            adapters.update(found)
        elif kind == "draft":
            raise ModelfileError("DRAFT (speculative decoding) is not supported by pollama", cmd.line)
        elif kind in ("template", "system", "renderer", "parser"):
            req[kind] = cmd.value
        elif kind == "requires":
            try:
                req["requires"] = check_requires(cmd.value)
            except ValueError as e:
                raise ModelfileError(str(e), cmd.line) from None
        elif kind == "license":
            licenses.append(cmd.value)
        elif kind == "message":
            messages.append({"role": cmd.key, "content": cmd.value})
        elif kind == "parameter":
            if cmd.key in P.DEPRECATED:
                warnings.append(f"warning: parameter {cmd.key} is deprecated")
                continue
            try:
                P.add(params, cmd.key, P.parse_text(cmd.key, cmd.value))
            except P.ParameterError as e:
                raise ModelfileError(str(e), cmd.line) from None
    if files:
        req["files"] = files
    if adapters:
        req["adapters"] = adapters
    if params:
        req["parameters"] = params
    if licenses:
        req["license"] = licenses
    if messages:
        req["messages"] = messages
    return req, warnings
