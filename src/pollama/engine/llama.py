"""Thin, typed wrappers over llama-cpp-python's low-level bindings: backend, model, vocabulary.

Everything that touches ctypes for loading and tokenizing lives here, so the rest of the
engine reads as Python. A `Model` is read-only after load and its tokenizer is
thread-safe (llama.h), so the server may tokenize on the event loop's thread pool while
the runner thread decodes.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from functools import cached_property
from pathlib import Path

import llama_cpp as L

log = logging.getLogger("pollama.engine")

_backend_lock = threading.Lock()
_backend_ready = False

# ggml.h log levels: 1 debug, 2 info, 3 warn, 4 error, 5 continuation of the previous line.
# llama.cpp's INFO is a page of load-time detail per model: demote it to DEBUG.
_GGML_TO_LOGGING = {
    0: logging.CRITICAL,
    1: logging.DEBUG,
    2: logging.DEBUG,
    3: logging.WARNING,
    4: logging.ERROR,
}
_llama_log = logging.getLogger("pollama.llama")
_last_level = logging.DEBUG
# Callables that see every llama.cpp log line, whatever the log level (quantize progress).
_listeners: list = []


@L.llama_log_callback
def _forward_log(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
    """Route llama.cpp's log into Python logging (INFO chatter is demoted to DEBUG)."""
    global _last_level
    py_level = _last_level if level == 5 else _GGML_TO_LOGGING.get(level, logging.DEBUG)
    _last_level = py_level
    for listener in list(_listeners):
        try:
            listener(text.decode("utf-8", "replace"))
        except Exception:  # never let Python errors unwind into C
            _llama_log.exception("log listener failed")
    if _llama_log.isEnabledFor(py_level):
        _llama_log.log(py_level, "%s", text.decode("utf-8", "replace").rstrip("\n"))


def init_backend() -> None:
    """Initialise llama.cpp once per process and take over its log output."""
    global _backend_ready
    with _backend_lock:
        if _backend_ready:
            return
        L.llama_log_set(_forward_log, ctypes.c_void_p(0))
        L.llama_backend_init()
        _backend_ready = True


def route_log(setter) -> None:
    """Send another llama.cpp library's log (libmtmd's `*_log_set`) through the same callback."""
    setter(_forward_log, ctypes.c_void_p(0))


def add_log_listener(fn) -> None:
    init_backend()
    _listeners.append(fn)


def remove_log_listener(fn) -> None:
    if fn in _listeners:
        _listeners.remove(fn)


class ModelLoadError(RuntimeError):
    pass


class Model:
    """One loaded GGUF: weights plus vocabulary."""

    def __init__(
        self,
        path: Path,
        *,
        n_gpu_layers: int = -1,
        use_mmap: bool = True,
        vocab_only: bool = False,
        shards: list[Path] | None = None,
    ):
        """`shards`: every file of a split GGUF in order (path being the first), for stores
        whose blob names do not follow llama.cpp's `-00001-of-0000N` naming."""
        init_backend()
        for p in shards or [path]:
            if not p.is_file():
                raise ModelLoadError(f"model file not found: {p}")
        params = L.llama_model_default_params()
        params.n_gpu_layers = n_gpu_layers if n_gpu_layers >= 0 else 999
        params.load_mode = L.LLAMA_LOAD_MODE_MMAP if use_mmap else L.LLAMA_LOAD_MODE_NONE
        params.vocab_only = vocab_only
        if shards and len(shards) > 1:
            paths = (ctypes.c_char_p * len(shards))(*[str(p).encode() for p in shards])
            ptr = L.llama_model_load_from_splits(paths, len(shards), params)
        else:
            ptr = L.llama_model_load_from_file(str(path).encode(), params)
        if not ptr:
            raise ModelLoadError(f"unable to load model: {path.name} (not a valid GGUF file, or unsupported)")
        self.ptr = ptr
        self.path = path
        self.vocab = L.llama_model_get_vocab(ptr)
        self.n_vocab: int = L.llama_vocab_n_tokens(self.vocab)
        self.n_ctx_train: int = L.llama_model_n_ctx_train(ptr)
        self.n_embd: int = L.llama_model_n_embd(ptr)
        self.add_bos: bool = bool(L.llama_vocab_get_add_bos(self.vocab))
        self.bos: int = L.llama_vocab_bos(self.vocab)
        self._pieces: dict[int, bytes] = {}

    def close(self) -> None:
        if self.ptr:
            L.llama_model_free(self.ptr)
            self.ptr = None

    # -- metadata -------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(256)
        n = L.llama_model_meta_val_str(self.ptr, key.encode(), buf, len(buf))
        if n < 0:
            return None
        if n >= len(buf):
            buf = ctypes.create_string_buffer(n + 1)
            L.llama_model_meta_val_str(self.ptr, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", "replace")

    @cached_property
    def architecture(self) -> str:
        return self.meta("general.architecture") or ""

    def meta_int(self, key: str, default: int = 0) -> int:
        value = self.meta(key)
        try:
            return int(value) if value is not None else default
        except ValueError:
            return default

    @cached_property
    def size_bytes(self) -> int:
        return int(L.llama_model_size(self.ptr))

    def kv_bytes_per_token(self, type_size: float = 2.0) -> int:
        """KV cache bytes one token costs across all layers (f16 by default)."""
        arch = self.architecture
        n_layer = self.meta_int(f"{arch}.block_count", 1)
        n_head = self.meta_int(f"{arch}.attention.head_count", 1)
        n_head_kv = self.meta_int(f"{arch}.attention.head_count_kv", n_head) or n_head
        head_k = self.meta_int(f"{arch}.attention.key_length", self.n_embd // max(n_head, 1))
        head_v = self.meta_int(f"{arch}.attention.value_length", head_k)
        return int(n_layer * n_head_kv * (head_k + head_v) * type_size)

    # -- tokens ---------------------------------------------------------------------------

    def tokenize(self, text: str, *, add_special: bool = True, parse_special: bool = True) -> list[int]:
        data = text.encode("utf-8", "surrogatepass")
        cap = len(data) + 16
        buf = (L.llama_token * cap)()
        n = L.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, parse_special)
        if n < 0:
            cap = -n
            buf = (L.llama_token * cap)()
            n = L.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, parse_special)
        if n < 0:
            raise ValueError("prompt could not be tokenized")
        return list(buf[:n])

    def piece(self, token: int) -> bytes:
        """The bytes of one token as output text (control tokens render as nothing)."""
        cached = self._pieces.get(token)
        if cached is not None:
            return cached
        buf = ctypes.create_string_buffer(64)
        n = L.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = L.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
        piece = buf.raw[: max(n, 0)]
        self._pieces[token] = piece
        return piece

    def detokenize(self, tokens: list[int]) -> str:
        return b"".join(self.piece(t) for t in tokens).decode("utf-8", "replace")

    def is_eog(self, token: int) -> bool:
        return bool(L.llama_vocab_is_eog(self.vocab, token))

    def is_control(self, token: int) -> bool:
        return bool(L.llama_vocab_is_control(self.vocab, token))

    def token_text(self, token: int) -> str:
        """The token as written in the vocabulary, special tokens included (for logprobs)."""
        buf = ctypes.create_string_buffer(64)
        n = L.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, True)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = L.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, True)
        return buf.raw[: max(n, 0)].decode("utf-8", "replace")

    @cached_property
    def chat_template(self) -> str | None:
        raw = L.llama_model_chat_template(self.ptr, None)
        return raw.decode("utf-8", "replace") if raw else None
