"""`pollama show`: the sections of ollama's `showInfo`, and the single-field flags."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from pollama.cli.client import Client
from pollama.cli.format import human_number, table, width
from pollama.modelfile.gofmt import go_g


class UsageError(Exception):
    """A bad combination of flags or arguments (exit 1, like cobra)."""


def go_value(value: Any, json_numbers: bool = False) -> str:
    """Go's `%v`; with `json_numbers`, every number is a float64 as Go decodes JSON (model_info)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) or (json_numbers and isinstance(value, int)):
        return go_g(float(value))
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_value(v, json_numbers) for v in value) + "]"
    if value is None:
        return "<nil>"
    return str(value)


def _elide(values: list[Any], target: int = 10) -> str:
    """ollama's short array rendering: as many items as fit in ~10 columns, then `...+N more]`."""
    shown, total = 0, 1
    for i, item in enumerate(values):
        w = width(go_value(item, True)) + (2 if i else 0)
        if total + w > target and i > 0:
            break
        total += w
        shown += 1
    if shown < len(values):
        return go_value(values[:shown], True)[:-1] + f" ...+{len(values) - shown} more]"
    return go_value(values, True)


def _head(text: str, n: int) -> list[list[str]]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    rows = [["", line] for line in (lines if n < 0 else lines[:n])]
    if 0 <= n < len(lines):
        rows.append(["", "..."])
    return rows


def _section(out: TextIO, header: str, rows: list[list[str]]) -> None:
    print(" ", header, file=out)
    limit = 100 if header in ("Template", "System", "License") else 30
    print(table(None, rows, limit=limit), file=out)
    print(file=out)


def _number(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render_info(resp: dict[str, Any], verbose: bool = False, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    info: dict[str, Any] = resp.get("model_info") or {}
    details: dict[str, Any] = resp.get("details") or {}

    rows: list[list[str]] = []
    if resp.get("remote_host"):
        rows += [["", "Remote model", resp.get("remote_model", "")], ["", "Remote URL", resp["remote_host"]]]
    if info:
        arch = str(info.get("general.architecture", details.get("family", "")))
        rows.append(["", "architecture", arch])
        params = details.get("parameter_size") or ""
        if not params and isinstance(info.get("general.parameter_count"), int | float):
            params = human_number(int(info["general.parameter_count"]))
        rows.append(["", "parameters", params])
        for key, label in (("context_length", "context length"), ("embedding_length", "embedding length")):
            text = _number(info.get(f"{arch}.{key}"))
            if text is not None:
                rows.append(["", label, text])
    else:
        rows += [
            ["", "architecture", details.get("family", "")],
            ["", "parameters", details.get("parameter_size", "")],
        ]
    rows.append(["", "quantization", details.get("quantization_level", "")])
    if resp.get("requires"):
        rows.append(["", "requires", resp["requires"]])
    _section(out, "Model", rows)

    if resp.get("capabilities"):
        _section(out, "Capabilities", [["", c] for c in resp["capabilities"]])

    projector = resp.get("projector_info")
    if projector:
        arch = str(projector.get("general.architecture", ""))
        prow = [["", "architecture", arch]]
        if isinstance(projector.get("general.parameter_count"), int | float):
            prow.append(["", "parameters", human_number(int(projector["general.parameter_count"]))])
        for key, label in (
            ("vision.embedding_length", "embedding length"),
            ("vision.projection_dim", "dimensions"),
        ):
            text = _number(projector.get(f"{arch}.{key}"))
            if text is not None:
                prow.append(["", label, text])
        _section(out, "Projector", prow)

    if resp.get("parameters"):
        prows = [["", *line.split()] for line in resp["parameters"].splitlines() if line.strip()]
        _section(out, "Parameters", prows)

    if info and verbose:
        mrows = []
        for key in sorted(info):
            value = info[key]
            text = _elide(value) if isinstance(value, list) else go_value(value, True)
            mrows.append(["", key, text])
        _section(out, "Metadata", mrows)

    if resp.get("tensors") and verbose:
        trows = [
            ["", t.get("name", ""), t.get("type", ""), go_value(t.get("shape", []))] for t in resp["tensors"]
        ]
        _section(out, "Tensors", trows)

    if resp.get("system"):
        _section(out, "System", _head(resp["system"], 2))
    if resp.get("license"):
        _section(out, "License", _head(resp["license"], 2))
    out.flush()


FIELDS = ("license", "modelfile", "parameters", "system", "template")


def cmd_show(args: argparse.Namespace) -> int:
    chosen = [f for f in FIELDS if getattr(args, f)]
    if len(chosen) > 1:
        raise UsageError(
            "only one of '--license', '--modelfile', '--parameters', '--system', or '--template' can be specified"
        )
    resp = Client().post("/api/show", {"model": args.model, "verbose": args.verbose})
    if chosen:
        field = chosen[0]
        value = resp.get(field) or ""
        # ollama prints system and template without an added newline, the others with one
        sys.stdout.write(value if field in ("system", "template") else value + "\n")
        sys.stdout.flush()
        return 0
    render_info(resp, args.verbose)
    return 0
