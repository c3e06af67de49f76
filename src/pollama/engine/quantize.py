"""llama.cpp's quantizer (`llama_model_quantize`), for `create --quantize`.

The C call has no progress callback, but it logs one line per tensor (`[  12/ 201]
blk.1.attn_q.weight - ...`) before converting it; a log listener turns those lines into
progress. The call holds no Python state, so it runs in whatever thread calls it.
"""

from __future__ import annotations

import ctypes
import re
import threading
from collections.abc import Callable
from pathlib import Path

import llama_cpp as L

from pollama.engine.llama import add_log_listener, remove_log_listener

# The target types Ollama accepts (fs/ggml ParseFileType), upper case, to llama.cpp's ftype.
FILE_TYPES: dict[str, int] = {
    "F32": L.LLAMA_FTYPE_ALL_F32,
    "F16": L.LLAMA_FTYPE_MOSTLY_F16,
    "BF16": L.LLAMA_FTYPE_MOSTLY_BF16,
    "Q8_0": L.LLAMA_FTYPE_MOSTLY_Q8_0,
    "Q4_K_S": L.LLAMA_FTYPE_MOSTLY_Q4_K_S,
    "Q4_K_M": L.LLAMA_FTYPE_MOSTLY_Q4_K_M,
}
ALIASES = {"Q4_K": "Q4_K_M"}

_TENSOR_LINE = re.compile(r"^\[\s*(\d+)/\s*(\d+)\]\s+(\S+)")
_lock = threading.Lock()  # one quantization at a time: each uses every core


class QuantizeError(RuntimeError):
    pass


def quantize(
    src: Path,
    dst: Path,
    file_type: str,
    *,
    threads: int = 0,
    on_tensor: Callable[[str], None] | None = None,
) -> None:
    """Write `src` quantized to `file_type` (a key of FILE_TYPES) at `dst`.
    `on_tensor(name)` is called as each tensor starts (from llama.cpp's thread)."""
    params = L.llama_model_quantize_default_params()
    params.ftype = FILE_TYPES[file_type]
    params.nthread = threads

    def listen(text: str) -> None:
        m = _TENSOR_LINE.match(text)
        if m and on_tensor is not None:
            on_tensor(m.group(3))

    with _lock:
        add_log_listener(listen)
        try:
            rc = L.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
        finally:
            remove_log_listener(listen)
    if rc != 0:
        raise QuantizeError(f"llama.cpp could not quantize the model (error {rc})")
