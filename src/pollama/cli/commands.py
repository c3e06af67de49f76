"""The verbs that are one request and a table or a line: list, ps, stop, rm, cp, pull, push."""

from __future__ import annotations

import argparse
import sys
from contextlib import closing
from datetime import UTC, datetime

from pollama.cli.client import Client, ClientError
from pollama.cli.format import human_bytes, human_time, parse_time, table
from pollama.cli.progress import Progress, Spinner
from pollama.names import DEFAULT_HOST, InvalidName, ModelName


def cmd_list(args: argparse.Namespace) -> int:
    models = Client().get("/api/tags").get("models") or []
    prefix = (args.prefix or "").lower()
    rows = [
        [
            m["name"],
            m.get("digest", "")[:12],
            "-" if m.get("remote_model") else human_bytes(m.get("size", 0)),
            human_time(m.get("modified_at")),
        ]
        for m in models
        if m["name"].lower().startswith(prefix)
    ]
    print(table(["NAME", "ID", "SIZE", "MODIFIED"], rows))
    return 0


def processor(size: int, vram: int) -> str:
    if vram == 0:
        return "100% CPU"
    if vram == size:
        return "100% GPU"
    if vram > size or size == 0:
        return "Unknown"
    cpu = round((size - vram) / size * 100)
    return f"{cpu}%/{100 - cpu}% CPU/GPU"


def cmd_ps(args: argparse.Namespace) -> int:
    models = Client().get("/api/ps").get("models") or []
    rows = []
    now = datetime.now(UTC)
    for m in models:
        if args.prefix and not m["name"].startswith(args.prefix):
            continue
        expires = parse_time(m.get("expires_at"))
        until = "Stopping..." if expires and expires < now else human_time(m.get("expires_at"), now=now)
        rows.append(
            [
                m["name"],
                m.get("digest", "")[:12],
                human_bytes(m.get("size", 0)),
                processor(m.get("size", 0), m.get("size_vram", 0)),
                str(m.get("context_length", "")),
                until,
            ]
        )
    print(table(["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"], rows))
    return 0


def unload(client: Client, model: str) -> None:
    """ollama's loadOrUnloadModel with keep_alive 0: an empty generate request."""
    with Spinner():
        client.post("/api/generate", {"model": model, "keep_alive": 0})


def cmd_stop(args: argparse.Namespace) -> int:
    try:
        unload(Client(), args.model)
    except ClientError as exc:
        if "not found" in str(exc) and not exc.route_missing:
            raise ClientError(exc.status, f'couldn\'t find model "{args.model}" to stop') from exc
        raise
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    client = Client()
    for name in args.models:
        try:  # unload first, so a loaded model's memory goes with it
            unload(client, name)
        except ClientError as exc:
            if "not found" not in str(exc).lower():
                print(f"Warning: unable to stop model '{name}'", file=sys.stderr)
        client.delete("/api/delete", {"model": name})
        print(f"deleted '{name}'")
    return 0


def cmd_cp(args: argparse.Namespace) -> int:
    Client().post("/api/copy", {"source": args.source, "destination": args.destination})
    print(f"copied '{args.source}' to '{args.destination}'")
    return 0


def pull(client: Client, name: str, insecure: bool = False) -> None:
    with (
        Progress() as progress,
        closing(client.stream("/api/pull", {"model": name, "insecure": insecure})) as s,
    ):
        for obj in s:
            progress.update(obj, "pulling")


def cmd_pull(args: argparse.Namespace) -> int:
    pull(Client(), args.model, args.insecure)
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    client = Client()
    body = {"model": args.model, "insecure": args.insecure}
    try:
        with Progress() as progress, closing(client.stream("/api/push", body)) as s:
            for obj in s:
                progress.update(obj, "pushing")
    except ClientError as exc:
        text = str(exc).lower()
        if "access denied" in text or "unauthorized" in text:
            raise ClientError(
                exc.status,
                "you are not authorized to push to this namespace, create the model under a namespace you own",
            ) from exc
        raise
    try:
        name = ModelName.parse(args.model)
        where = str(name)
        if name.host.endswith((".ollama.ai", ".ollama.com")) or name.host == DEFAULT_HOST:
            where = "https://ollama.com/" + name.display.removesuffix(":latest")
    except InvalidName:
        where = args.model
    print("\nYou can find your model at:\n")
    print(f"\t{where}")
    return 0
