"""safetensors (Hugging Face layout) to GGUF, with the `gguf` package and numpy only (no torch).

Supported families: BERT encoders (sentence-transformers embedding models such as
all-MiniLM-L6-v2), Llama (and Mistral) and Gemma 3 text models. The architecture is read
from config.json's `architectures`.

    convert_safetensors(src_dir, out_path, progress=print)

raises ConvertError(message) for input it cannot convert; out_path is then not left behind.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pollama.convert import bert, decoder
from pollama.convert.errors import ConvertError
from pollama.convert.vocab import load_json

__all__ = ["ConvertError", "convert_safetensors", "supported_architectures"]

_FAMILIES = [
    (bert.ARCHITECTURES, bert.convert),
    (decoder.LLAMA, decoder.convert),
    (decoder.GEMMA3, decoder.convert),
]


def supported_architectures() -> list[str]:
    return sorted(a for archs, _ in _FAMILIES for a in archs)


def convert_safetensors(
    src_dir: Path,
    out_path: Path,
    *,
    progress: Callable[[str], None] | None = None,
    source: str | None = None,
) -> None:
    """Convert the Hugging Face model in src_dir (config.json, *.safetensors, tokenizer files)
    into one F16 GGUF file at out_path. `source` (optional) is recorded as general.source.url,
    so a later run can tell which input a GGUF was made from (the bundled models use it)."""
    src_dir = Path(src_dir)
    if not src_dir.is_dir():
        raise ConvertError(f"{src_dir} is not a directory")
    cfg = load_json(src_dir / "config.json")
    if not isinstance(cfg, dict):
        raise ConvertError("config.json is missing or is not a JSON object")
    archs = cfg.get("architectures")
    arch = archs[0] if isinstance(archs, list) and archs and isinstance(archs[0], str) else None
    if arch is None:
        raise ConvertError("config.json has no architectures")
    for names, fn in _FAMILIES:
        if arch in names:
            if progress:
                progress("converting model")
            fn(src_dir, cfg, Path(out_path), progress, source)
            return
    raise ConvertError(
        f"unsupported architecture {arch!r} (supported: {', '.join(supported_architectures())})"
    )
