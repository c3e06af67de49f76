"""A reader for SentencePiece's tokenizer.model (a protobuf), without the sentencepiece or
protobuf packages: only the fields a GGUF needs (pieces, scores, types, normalizer flags).

Wire format: each field is a varint key (field number << 3 | wire type) followed by a varint
(type 0), 8 bytes (type 1), a length-prefixed payload (type 2) or 4 bytes (type 5).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from pollama.convert.errors import ConvertError

# sentencepiece_model.proto
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
BPE = 2


@dataclass
class SpmModel:
    pieces: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    types: list[int] = field(default_factory=list)
    model_type: int = 1  # UNIGRAM unless the trainer spec says otherwise
    add_dummy_prefix: bool = True
    remove_extra_whitespaces: bool = True
    byte_fallback: bool = False
    unk_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    pad_id: int = -1


def _varint(data: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if i >= len(data):
            raise ConvertError("tokenizer.model: truncated protobuf")
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise ConvertError("tokenizer.model: bad varint")


def _fields(data: bytes):
    """(field number, wire type, value) for each field of one message."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 1:
            value, i = data[i : i + 8], i + 8
        elif wire == 2:
            n, i = _varint(data, i)
            value, i = data[i : i + n], i + n
        elif wire == 5:
            value, i = data[i : i + 4], i + 4
        else:
            raise ConvertError(f"tokenizer.model: unsupported protobuf wire type {wire}")
        if i > len(data):
            raise ConvertError("tokenizer.model: truncated protobuf")
        yield num, wire, value


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def read_spm(path: Path) -> SpmModel:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConvertError(f"tokenizer.model: {exc}") from exc
    m = SpmModel()
    for num, wire, value in _fields(data):
        if num == 1 and wire == 2:  # SentencePiece
            piece, score, kind = "", 0.0, NORMAL
            for n, w, v in _fields(value):
                if n == 1 and w == 2:
                    piece = v.decode("utf-8", "surrogatepass")
                elif n == 2 and w == 5:
                    (score,) = struct.unpack("<f", v)
                elif n == 3 and w == 0:
                    kind = v
            m.pieces.append(piece)
            m.scores.append(score)
            m.types.append(kind)
        elif num == 2 and wire == 2:  # TrainerSpec
            for n, w, v in _fields(value):
                if w != 0:
                    continue
                if n == 3:
                    m.model_type = v
                elif n == 35:
                    m.byte_fallback = bool(v)
                elif n == 40:
                    m.unk_id = _signed(v)
                elif n == 41:
                    m.bos_id = _signed(v)
                elif n == 42:
                    m.eos_id = _signed(v)
                elif n == 43:
                    m.pad_id = _signed(v)
        elif num == 3 and wire == 2:  # NormalizerSpec
            for n, w, v in _fields(value):
                if n == 3 and w == 0:
                    m.add_dummy_prefix = bool(v)
                elif n == 4 and w == 0:
                    m.remove_extra_whitespaces = bool(v)
    if not m.pieces:
        raise ConvertError("tokenizer.model: no pieces (not a SentencePiece model?)")
    return m
