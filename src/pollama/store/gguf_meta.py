"""Fast GGUF metadata reader (header, key/values, tensor infos) — no tensor data is touched.

`gguf.GGUFReader` builds a numpy view per array element and takes ~25 s on a model whose
vocabulary has 262k tokens; create, show and bundled registration need the header in well
under a second, so this walks the header directly over an mmap. The `gguf` package still
supplies the type tables (value types, tensor type names), so both agree on the format.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGMLQuantizationType, GGUFValueType

GGUF_MAGIC = b"GGUF"

# Ollama's FileType.String() (fs/ggml/type.go): names it knows, "unknown" otherwise.
_FILE_TYPE_NAMES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 4: "MXFP4", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
    10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
    16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 21: "Q2_K_S", 32: "BF16",
}  # fmt: skip

_SCALAR = {
    GGUFValueType.UINT8: "<B", GGUFValueType.INT8: "<b", GGUFValueType.UINT16: "<H",
    GGUFValueType.INT16: "<h", GGUFValueType.UINT32: "<I", GGUFValueType.INT32: "<i",
    GGUFValueType.FLOAT32: "<f", GGUFValueType.BOOL: "<?", GGUFValueType.UINT64: "<Q",
    GGUFValueType.INT64: "<q", GGUFValueType.FLOAT64: "<d",
}  # fmt: skip
_NUMPY = {t: np.dtype(f) for t, f in _SCALAR.items()}


class GGUFError(ValueError):
    """Not a GGUF file, or a truncated/corrupt header."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    type: str  # ggml type name as Ollama shows it: "Q4_K", "F32", ...
    shape: list[int]  # GGUF order (ne[0] first), as Ollama's /api/show lists it
    offset: int

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass
class GGUFInfo:
    version: int
    kv: dict[str, Any]
    tensors: list[TensorInfo] = field(default_factory=list)
    elided: set[str] = field(default_factory=set)  # array keys left out (longer than max_array)

    @property
    def architecture(self) -> str:
        return str(self.kv.get("general.architecture", ""))

    @property
    def parameter_count(self) -> int:
        """Sum of tensor elements, as Ollama computes `general.parameter_count` on decode."""
        return sum(t.n_elements for t in self.tensors)

    @property
    def file_type(self) -> str:
        """Ollama's KV.FileType(): a missing or zero general.file_type reads as "unknown"."""
        t = self.kv.get("general.file_type")
        return _FILE_TYPE_NAMES.get(t, "unknown") if isinstance(t, int) and t > 0 else "unknown"


def human_number(n: int) -> str:
    """Go's format.HumanNumber: 8B, 3.2B, 268.10M, 137M, 22K."""
    for unit, scale, decimals in (("T", 10**12, 1), ("B", 10**9, 1), ("M", 10**6, 2)):
        if n >= scale:
            value = n / scale
            return f"{value:.0f}{unit}" if value == int(value) else f"{value:.{decimals}f}{unit}"
    if n >= 1000:
        return f"{n / 1000:.0f}K"
    return str(n)


def is_gguf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == GGUF_MAGIC
    except OSError:
        return False


def _float32(x: float) -> float:
    """The shortest decimal that round-trips as float32, as Go's JSON encoder writes float32."""
    return float(repr(np.float32(x)).removeprefix("np.float32(").removesuffix(")"))


class _Cursor:
    def __init__(self, buf: memoryview):
        self.buf = buf
        self.pos = 0

    def take(self, n: int) -> memoryview:
        end = self.pos + n
        if end > len(self.buf) or n < 0:
            raise GGUFError("truncated GGUF header")
        out = self.buf[self.pos : end]
        self.pos = end
        return out

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "little")

    def u64(self) -> int:
        return int.from_bytes(self.take(8), "little")

    def string(self) -> str:
        return bytes(self.take(self.u64())).decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        buf, pos, size = self.buf, self.pos, len(self.buf)
        for _ in range(count):
            if pos + 8 > size:
                raise GGUFError("truncated GGUF header")
            pos += 8 + int.from_bytes(buf[pos : pos + 8], "little")
        if pos > size:
            raise GGUFError("truncated GGUF header")
        self.pos = pos

    def value(self, vtype: int, max_array: int | None) -> tuple[Any, bool]:
        """Read one value; returns (value, elided). Arrays over max_array come back as []."""
        if vtype == GGUFValueType.STRING:
            return self.string(), False
        if vtype == GGUFValueType.ARRAY:
            etype, count = self.u32(), self.u64()
            keep = max_array is None or count <= max_array
            if etype == GGUFValueType.STRING:
                if not keep:
                    self.skip_strings(count)
                    return [], True
                return [self.string() for _ in range(count)], False
            if etype == GGUFValueType.ARRAY:  # nested arrays: rare; read them one by one
                items = [self.value(GGUFValueType.ARRAY, max_array)[0] for _ in range(count)]
                return (items, False) if keep else ([], True)
            dtype = _NUMPY.get(GGUFValueType(etype)) if etype in _SCALAR_IDS else None
            if dtype is None:
                raise GGUFError(f"unknown GGUF array type {etype}")
            raw = self.take(dtype.itemsize * count)
            if not keep:
                return [], True
            arr = np.frombuffer(raw, dtype=dtype)
            if etype == GGUFValueType.FLOAT32:
                return [_float32(x) for x in arr], False
            return arr.tolist(), False
        if vtype not in _SCALAR_IDS:
            raise GGUFError(f"unknown GGUF value type {vtype}")
        fmt = _SCALAR[GGUFValueType(vtype)]
        (v,) = struct.unpack(fmt, self.take(struct.calcsize(fmt)))
        if vtype == GGUFValueType.FLOAT32:
            v = _float32(v)
        return v, False


_SCALAR_IDS = {int(t) for t in _SCALAR}


def _tensor_type_name(t: int) -> str:
    try:
        return GGMLQuantizationType(t).name
    except ValueError:
        return "unknown"


def read_gguf(path: Path, max_array: int | None = None) -> GGUFInfo:
    """Read the header of a GGUF file. `max_array`: arrays longer than this become [] (cheap)."""
    try:
        with open(path, "rb") as f:
            try:
                mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            except ValueError as e:  # empty file
                raise GGUFError("not a GGUF file") from e
            with mm:
                view = memoryview(mm)
                try:
                    return _parse(_Cursor(view), max_array)
                finally:
                    view.release()
    except OSError as e:
        raise GGUFError(str(e)) from e


def _parse(c: _Cursor, max_array: int | None) -> GGUFInfo:
    if bytes(c.take(4)) != GGUF_MAGIC:
        raise GGUFError("not a GGUF file")
    version = c.u32()
    if version not in (2, 3):  # v1 used 32-bit counts; nothing current writes it
        raise GGUFError(f"unsupported GGUF version {version}")
    n_tensors, n_kv = c.u64(), c.u64()
    info = GGUFInfo(version=version, kv={})
    for _ in range(n_kv):
        key = c.string()
        value, elided = c.value(c.u32(), max_array)
        info.kv[key] = value
        if elided:
            info.elided.add(key)
    for _ in range(n_tensors):
        name = c.string()
        dims = [c.u64() for _ in range(c.u32())]
        ttype = c.u32()
        info.tensors.append(TensorInfo(name, _tensor_type_name(ttype), dims, c.u64()))
    return info
