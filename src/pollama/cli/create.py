"""`pollama create NAME [-f Modelfile] [-q QUANT]`, as ollama's CLI does it.

The Modelfile is parsed here (errors show their line), every local file it names — a GGUF,
split GGUF shards (a glob or a folder of them), a safetensors folder, an adapter — is
hashed and uploaded to `/api/blobs/<digest>` unless the server already has it (HEAD
first), and the server gets the structured create request with digests, never client
paths, so a remote server works like a local one.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

from pollama.cli.client import Client
from pollama.cli.progress import Progress
from pollama.cli.show import UsageError
from pollama.modelfile import Command, ModelfileError, parse, to_request
from pollama.names import InvalidName, ModelName

HASH_CHUNK = 4 << 20


def expand(value: str, base: Path) -> Path:
    """A FROM/ADAPTER argument as a path: absolute, `~`, or relative to the Modelfile."""
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else base / path


def model_files(folder: Path) -> list[Path]:
    """The files of a model folder that a create needs (ollama's filesForModel)."""

    def matches(*patterns: str) -> list[Path]:
        return sorted({Path(p) for pattern in patterns for p in glob.glob(str(folder / pattern))})

    weights = matches("model*.safetensors") and matches("model*.safetensors", "*/model*.safetensors")
    weights = weights or matches("consolidated*.safetensors")
    if not weights:
        if matches("pytorch_model*.bin", "consolidated*.pth"):
            raise UsageError(
                f"{folder}: PyTorch checkpoints are not supported; use safetensors or GGUF files"
            )
        weights = matches("*.gguf")
        if not weights:
            raise UsageError(f"{folder}: no Modelfile or safetensors files found")
        return weights
    extra = matches(
        "*.json",
        "*/*.json",
        "chat_template.jinja",
        "tokenizer.model",
        "*/tokenizer.model",
        "vocab.txt",
        "merges.txt",
    )
    return weights + [p for p in extra if p not in weights]


def local_files(value: str, base: Path) -> dict[str, Path] | None:
    """{name sent to the server: local path} for a FROM/ADAPTER argument, or None when it
    names no local file (for FROM: then it is a model name)."""
    path = expand(value, base)
    if glob.has_magic(value):
        found = sorted(Path(p) for p in glob.glob(str(path)) if Path(p).is_file())
        return {p.name: p for p in found} or None
    if path.is_dir():
        return {p.relative_to(path).as_posix(): p for p in model_files(path)}
    if path.is_file():
        return {path.name: path}
    return None


def file_digest(path: Path, progress: Progress) -> str:
    size = path.stat().st_size
    sha = hashlib.sha256()
    label = f"hashing {path.name}"
    with path.open("rb") as f:
        while chunk := f.read(HASH_CHUNK):
            sha.update(chunk)
            progress.advance(label, label, size, len(chunk))
    if size == 0:
        progress.bar(label, label, 0, 0)
    return f"sha256:{sha.hexdigest()}"


def upload(client: Client, path: Path, digest: str, progress: Progress) -> None:
    """Send the blob unless the server has it already."""
    if client.has_blob(digest):
        return
    size = path.stat().st_size
    label = f"copying file {digest}"
    with path.open("rb") as f:
        client.upload_blob(digest, f, size, lambda n: progress.advance(label, label, size, n))


def build_request(text: str | bytes, base: Path, client: Client, progress: Progress) -> dict[str, Any]:
    """Parse the Modelfile, upload what it names, and return the create request body."""
    try:
        mf = parse(text)
    except ModelfileError as e:
        raise UsageError(str(e)) from None
    paths: dict[str, Path] = {}

    def resolve(cmd: Command, hashing: bool = True) -> dict[str, str] | None:
        found = local_files(cmd.value, base)
        if found is None:
            if cmd.instruction == "from" and not ModelName.is_valid(cmd.value):
                raise ModelfileError(f"FROM {cmd.value}: no such file, and not a model name", cmd.line)
            return None
        digests = {}
        for name, path in found.items():
            digests[name] = file_digest(path, progress) if hashing else ""
            paths[digests[name]] = path
        return digests

    try:
        to_request(mf, lambda cmd: resolve(cmd, hashing=False))  # report mistakes before hashing
        paths.clear()
        req, warnings = to_request(mf, resolve)
    except ModelfileError as e:
        raise UsageError(str(e)) from None
    for warning in warnings:
        print(warning)
    for digest, path in paths.items():
        upload(client, path, digest, progress)
    return req


def cmd_create(args: argparse.Namespace) -> int:
    try:
        ModelName.parse(args.model)
    except InvalidName:
        raise UsageError(f"invalid model name: {args.model}") from None
    if args.file:
        modelfile = Path(args.file).absolute()
        if not modelfile.is_file():
            raise UsageError("specified Modelfile wasn't found")
        text: str | bytes = modelfile.read_bytes()
    elif Path("Modelfile").is_file():
        modelfile = Path("Modelfile").absolute()
        text = modelfile.read_bytes()
    else:  # as ollama: no Modelfile means "the model files are in this folder"
        modelfile = Path("Modelfile").absolute()
        text = "FROM .\n"

    client = Client()
    with Progress() as progress:
        progress.phase("gathering model components")
        body = build_request(text, modelfile.parent, client, progress)
        body["model"] = args.model
        if args.quantize:
            body["quantize"] = args.quantize
        with closing(client.stream("/api/create", body)) as stream:
            for obj in stream:
                progress.update(obj, "creating")
    sys.stdout.flush()
    return 0
