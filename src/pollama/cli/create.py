"""`pollama create NAME -f Modelfile [-q QUANT]`: local files become blobs, then POST /api/create.

Like ollama's CLI, files named by FROM and ADAPTER are hashed here and uploaded to
`/api/blobs/<digest>` (a HEAD first, so a blob the server already has is never sent
again); the server then builds the model from digests, never from client paths, so a
remote server works the same as a local one.

The Modelfile goes to the server in the older text form (`modelfile`), with each local
path replaced by `@sha256:<hex>` as ollama ≤0.5.4 did; the server parses it and reports
errors with their line numbers.
"""

from __future__ import annotations

import argparse
import hashlib
import os
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from pollama.cli.client import Client
from pollama.cli.progress import Progress
from pollama.cli.show import UsageError
from pollama.names import InvalidName, ModelName

HASH_CHUNK = 4 << 20


@dataclass
class Reference:
    """A FROM or ADAPTER argument: where it sits in the text, and what it says."""

    instruction: str
    value: str
    start: int
    end: int


def decode(raw: bytes) -> str:
    """Modelfiles may start with a UTF-8 or UTF-16 byte-order mark."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    return raw.decode("utf-8-sig")


def _closing_quote(text: str, start: int, quote: str) -> int:
    """Index just past the quote that ends an argument: one followed by whitespace or the end."""
    pos = start
    while True:
        found = text.find(quote, pos)
        if found < 0:
            return len(text)  # unterminated: the server reports `unexpected EOF`
        after = found + len(quote)
        if after >= len(text) or text[after].isspace():
            return after
        pos = found + 1


def references(text: str) -> list[Reference]:
    """The FROM and ADAPTER arguments of a Modelfile, skipping comments and quoted blocks."""
    refs: list[Reference] = []
    pos = 0
    while pos < len(text):
        eol = text.find("\n", pos)
        eol = len(text) if eol < 0 else eol
        line = text[pos:eol]
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#"):
            pos = eol + 1
            continue
        word = stripped.split(None, 1)[0]
        arg = pos + (len(line) - len(stripped)) + len(word)
        while arg < eol and text[arg] in " \t":
            arg += 1
        if text.startswith('"""', arg):
            end = _closing_quote(text, arg + 3, '"""')
            value = text[arg + 3 : end - 3]
        elif text.startswith('"', arg):
            end = _closing_quote(text, arg + 1, '"')
            value = text[arg + 1 : end - 1]
        else:
            end = eol
            value = text[arg:eol].strip()
        if word.lower() in ("from", "adapter"):
            refs.append(Reference(word.lower(), value, arg, end))
        nxt = text.find("\n", end)
        pos = len(text) if nxt < 0 else nxt + 1
    return refs


def resolve(value: str, base: Path) -> Path:
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else base / path


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
        progress.phase(f"using existing blob {digest}")
        return
    size = path.stat().st_size
    label = f"copying file {digest.removeprefix('sha256:')[:12]}"
    with path.open("rb") as f:
        client.upload_blob(digest, f, size, lambda n: progress.advance(label, label, size, n))


def prepare(text: str, base: Path, client: Client, progress: Progress) -> str:
    """Upload every local file the Modelfile names; return the text with `@digest` in their place."""
    out, last = [], 0
    for ref in references(text):
        path = resolve(ref.value, base)
        if not path.exists():
            if ref.instruction == "from" and not ref.value.startswith((".", "/", "~")):
                continue  # a model name
            raise FileNotFoundError(2, "no such file or directory", str(path))
        if path.is_dir():
            raise UsageError(
                f"{ref.instruction.upper()} {ref.value}: creating from a directory (safetensors) needs the "
                "structured create request, which this client cannot build yet"
            )
        digest = file_digest(path, progress)
        upload(client, path, digest, progress)
        out.append(text[last : ref.start] + "@" + digest)
        last = ref.end
    out.append(text[last:])
    return "".join(out)


def cmd_create(args: argparse.Namespace) -> int:
    try:
        ModelName.parse(args.model)
    except InvalidName:
        raise UsageError(f"invalid model name: {args.model}") from None
    if args.file:
        modelfile = Path(args.file).absolute()
        if not modelfile.exists():
            raise UsageError("specified Modelfile wasn't found")
        text = decode(modelfile.read_bytes())
    elif Path("Modelfile").exists():
        modelfile = Path("Modelfile").absolute()
        text = decode(modelfile.read_bytes())
    else:  # as ollama: no Modelfile means "the model files are in this folder"
        modelfile = Path("Modelfile").absolute()
        text = "FROM .\n"

    client = Client()
    with Progress() as progress:
        progress.phase("gathering model components")
        body: dict = {"model": args.model, "modelfile": prepare(text, modelfile.parent, client, progress)}
        if args.quantize:
            body["quantize"] = args.quantize
        with closing(client.stream("/api/create", body)) as stream:
            for obj in stream:
                progress.update(obj, "creating")
    return 0
