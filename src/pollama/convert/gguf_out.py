"""Write a GGUF from lazily produced tensors: header, metadata and tensor table first, then
each tensor's data as it is computed, so only one tensor is in memory at a time."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

from pollama.convert.errors import ConvertError

log = logging.getLogger("pollama.convert")

Progress = Callable[[str], None]


@dataclass
class OutTensor:
    name: str  # GGUF tensor name
    shape: tuple[int, ...]  # numpy (row-major) shape; the writer reverses it into GGML order
    dtype: type  # np.float16 or np.float32
    produce: Callable[[], np.ndarray]


def weight_dtype(name: str, shape: tuple[int, ...]) -> type:
    """F16 for matrices, F32 for vectors and norms (what llama.cpp's converter writes for F16)."""
    if len(shape) <= 1 or "_norm" in name or name.endswith("norm.weight"):
        return np.float32
    return np.float16


def write_gguf(
    writer: gguf.GGUFWriter, tensors: list[OutTensor], out_path: Path, progress: Progress | None
) -> None:
    """Finish `writer` (its metadata already added) into out_path; nothing is left on failure."""
    names = [t.name for t in tensors]
    if len(set(names)) != len(names):
        raise ConvertError("duplicate tensor names in the converted model")
    for t in tensors:
        nbytes = int(np.prod(t.shape)) * np.dtype(t.dtype).itemsize
        writer.add_tensor_info(t.name, t.shape, np.dtype(t.dtype), nbytes)
    try:
        writer.write_header_to_file(out_path)
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for t in tensors:
            data = np.ascontiguousarray(t.produce(), dtype=t.dtype)
            if data.shape != t.shape:
                raise ConvertError(f"tensor {t.name} has shape {data.shape}, expected {t.shape}")
            if not np.all(np.isfinite(data)):
                raise ConvertError(f"tensor {t.name} has values that do not fit in {np.dtype(t.dtype).name}")
            writer.write_tensor_data(data)
        writer.close()
    except BaseException:
        writer.close()
        with contextlib.suppress(FileNotFoundError):
            out_path.unlink()
        raise
