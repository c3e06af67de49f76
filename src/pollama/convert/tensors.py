"""Read a Hugging Face safetensors set lazily, without torch and without loading it all.

The safetensors format is an 8-byte little-endian header length, a JSON header (name ->
dtype, shape, byte offsets) and the raw data. Tensors are memory-mapped and converted one at
a time, so a model larger than memory converts in bounded space. BF16 (which numpy has no
type for) is widened to float32 by shifting its 16 bits into the high half of a uint32.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pollama.convert.errors import ConvertError

_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "BF16": np.uint16,  # widened in TensorRef.load
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}
_MAX_HEADER = 100 << 20


@dataclass(frozen=True)
class TensorRef:
    name: str
    dtype: str
    shape: tuple[int, ...]
    path: Path
    start: int  # absolute file offset of the data
    nbytes: int

    def load(self) -> np.ndarray:
        """The tensor as a numpy array (float32 for BF16; memory-mapped where possible)."""
        np_type = _DTYPES[self.dtype]
        count = int(np.prod(self.shape)) if self.shape else 1
        data = np.memmap(self.path, dtype=np_type, mode="r", offset=self.start, shape=(count,))
        if self.dtype == "BF16":
            data = (data.astype(np.uint32) << 16).view(np.float32)
        return data.reshape(self.shape)


def _read_header(path: Path) -> dict[str, TensorRef]:
    try:
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) != 8:
                raise ConvertError(f"{path.name}: not a safetensors file (too short)")
            (size,) = struct.unpack("<Q", raw)
            if size <= 0 or size > _MAX_HEADER:
                raise ConvertError(f"{path.name}: not a safetensors file (bad header size)")
            header = json.loads(f.read(size))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ConvertError(f"{path.name}: not a safetensors file ({exc})") from exc
    if not isinstance(header, dict):
        raise ConvertError(f"{path.name}: not a safetensors file (header is not an object)")
    file_size = path.stat().st_size
    base = 8 + size
    refs: dict[str, TensorRef] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = (
                info["dtype"],
                tuple(int(d) for d in info["shape"]),
                info["data_offsets"],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConvertError(f"{path.name}: bad entry for tensor {name!r}") from exc
        if dtype not in _DTYPES:
            raise ConvertError(f"{path.name}: tensor {name!r} has unsupported dtype {dtype}")
        expect = (
            int(np.prod(shape)) * np.dtype(_DTYPES[dtype]).itemsize
            if shape
            else np.dtype(_DTYPES[dtype]).itemsize
        )
        if end - begin != expect or base + end > file_size or begin < 0:
            raise ConvertError(f"{path.name}: tensor {name!r} lies outside the file or has the wrong size")
        refs[name] = TensorRef(name, dtype, shape, path, base + begin, end - begin)
    return refs


def safetensors_files(src: Path) -> list[Path]:
    """The weight files of a model folder: the index's shards, or every *.safetensors file."""
    index = src / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            names = sorted(set(weight_map.values()))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConvertError(f"{index.name}: invalid index ({exc})") from exc
        files = [src / n for n in names]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise ConvertError(f"missing safetensors file(s): {', '.join(missing)}")
        return files
    files = sorted(p for p in src.glob("*.safetensors") if p.is_file())
    if not files:
        raise ConvertError("no safetensors files found")
    return files


def read_tensors(src: Path) -> dict[str, TensorRef]:
    refs: dict[str, TensorRef] = {}
    for path in safetensors_files(src):
        for name, ref in _read_header(path).items():
            if name in refs:
                raise ConvertError(f"tensor {name!r} appears in more than one file")
            refs[name] = ref
    return refs


def iter_sorted(refs: dict[str, TensorRef]) -> Iterator[TensorRef]:
    yield from (refs[k] for k in sorted(refs))
