"""Images through llama.cpp's multimodal library (libmtmd): a projector GGUF beside the model.

`Projector.tokenize` turns a prompt given as parts (text, and image file bytes, in prompt
order) into the token list the runner evaluates plus the encoded images it decodes in
place of their placeholder positions. The image encoder (a ViT forward pass) runs here, on
the caller's thread (the server's worker pool), so other sequences keep generating on the
runner thread meanwhile; the runner only feeds the embeddings through llama_decode.

Placeholder ids are negative (never a real token) and derived from the image's bytes, so a
follow-up request that repeats the same image after the same prefix reuses its KV cache
like text. Only this module loads libmtmd.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import llama_cpp as L
import llama_cpp.mtmd_cpp as M
import numpy as np

from pollama.engine.llama import Model, ModelLoadError, add_log_listener, remove_log_listener, route_log
from pollama.engine.runner import ImageError

log = logging.getLogger("pollama.engine")

# What stb_image (inside libmtmd) decodes, by magic bytes. Checking first also keeps libmtmd
# from probing other data as a video, which launches ffprobe.
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")

_log_routed = False
_log_lock = threading.Lock()


@dataclass(frozen=True, eq=False)
class EncodedImage:
    """One image chunk of a prompt, encoded, waiting to be decoded at `start`."""

    start: int  # index of its first position in the prompt's token list
    n_tokens: int  # embeddings, one position each (M-RoPE projectors are refused at load)
    non_causal: bool  # decoded with full attention inside the image, so in one ubatch
    embd: np.ndarray  # float32, n_tokens * n_embd


def _route_log_once() -> None:
    global _log_routed
    with _log_lock:
        if not _log_routed:
            route_log(M.mtmd_log_set)
            route_log(M.mtmd_helper_log_set)
            _log_routed = True


class Projector:
    """An mtmd context: the vision encoder and projector, bound to one loaded text model."""

    def __init__(self, path: Path, model: Model, *, n_threads: int, n_batch: int):
        _route_log_once()
        if not path.is_file():
            raise ModelLoadError(f"projector file not found: {path}")
        errors: list[str] = []

        def listen(line: str) -> None:  # libmtmd says why a load failed only in its log
            if "error" in line.lower() or "mismatch" in line:
                errors.append(line.strip())

        params = M.mtmd_context_params_default()
        params.n_threads = n_threads
        params.print_timings = False
        add_log_listener(listen)
        try:
            ptr = M.mtmd_init_from_file(str(path).encode(), model.ptr, params)
        finally:
            remove_log_listener(listen)
        if not ptr:
            reason = errors[-1].split("error:", 1)[-1].strip().splitlines()[0] if errors else "invalid file"
            raise ModelLoadError(f"unable to load vision projector {path.name}: {reason}")
        self.ptr = ptr
        if not M.mtmd_support_vision(ptr):
            self.close()
            raise ModelLoadError(f"projector {path.name} has no vision encoder (audio is not supported)")
        if M.mtmd_decode_use_mrope(ptr):
            self.close()
            raise ModelLoadError(f"projector {path.name} uses M-RoPE positions (Qwen-VL), not supported yet")
        self.path = path
        self.n_batch = n_batch
        self.n_embd = L.llama_model_n_embd_inp(model.ptr)
        self.size_bytes = path.stat().st_size
        self._lock = threading.Lock()  # one encoder: requests take turns

    def close(self) -> None:
        if self.ptr:
            M.mtmd_free(self.ptr)
            self.ptr = None

    def tokenize(
        self, parts: Sequence[str | bytes], *, add_special: bool = True, prefix: Sequence[int] = ()
    ) -> tuple[list[int], tuple[EncodedImage, ...]]:
        """Tokens (after `prefix`) with placeholder ids where images go, and the encoded images.

        Blocking (it runs the image encoder): call from a worker thread. Raises ImageError
        for data that is not an image, or a prompt the runner could not evaluate."""
        images = [p for p in parts if isinstance(p, bytes)]
        for i, data in enumerate(images):
            if not data.startswith(_IMAGE_MAGIC):
                raise ImageError(f"image {i}: unsupported image format (expected JPEG, PNG, GIF or BMP)")
        with self._lock:
            if not self.ptr:
                raise ImageError("the vision projector is not loaded")
            bitmaps: list[int] = []
            chunks = M.mtmd_input_chunks_init()
            try:
                c_parts = []
                for part in parts:
                    if isinstance(part, bytes):
                        bitmap = self._bitmap(part, len(bitmaps))
                        bitmaps.append(bitmap)
                        c_parts.append(M.mtmd_input_part(None, bitmap))
                    else:
                        data = part.encode("utf-8", "surrogatepass")
                        # add_special=False, parse_special=True; the struct keeps `data` alive
                        text = M.mtmd_input_text(data, len(data), False, True)
                        c_parts.append(M.mtmd_input_part(ctypes.pointer(text), None))
                array = (ctypes.POINTER(M.mtmd_input_part) * len(c_parts))(*map(ctypes.pointer, c_parts))
                rc = M.mtmd_tokenize_from_parts(self.ptr, chunks, array, len(c_parts), add_special)
                if rc != 0:
                    raise ImageError(f"the prompt could not be tokenized with its images (mtmd rc={rc})")
                return self._encode(chunks, list(prefix))
            finally:
                M.mtmd_input_chunks_free(chunks)
                for bitmap in bitmaps:
                    M.mtmd_bitmap_free(bitmap)

    def _bitmap(self, data: bytes, index: int) -> int:
        buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        out = M.mtmd_helper_bitmap_init_from_buf_wrapper(
            self.ptr, buf, len(data), False, M.mtmd_helper_init_opt_default()
        )
        if out.video_ctx:  # what stb_image could not read, libmtmd tries as a video (ffmpeg)
            M.mtmd_helper_video_free(out.video_ctx)
            if out.bitmap:
                M.mtmd_bitmap_free(out.bitmap)
            raise ImageError(f"image {index}: videos are not supported")
        if not out.bitmap:
            raise ImageError(f"image {index}: the image data could not be decoded")
        return out.bitmap

    def _encode(self, chunks: int, tokens: list[int]) -> tuple[list[int], tuple[EncodedImage, ...]]:
        images: list[EncodedImage] = []
        seen: dict[bytes, int] = {}  # chunks so far per image (a sliced image gives several)
        for i in range(M.mtmd_input_chunks_size(chunks)):
            chunk = M.mtmd_input_chunks_get(chunks, i)
            kind = M.mtmd_input_chunk_get_type(chunk)
            if kind == M.MTMD_INPUT_CHUNK_TYPE_TEXT:
                count = ctypes.c_size_t()
                ptr = M.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(count))
                tokens.extend(ptr[: count.value])
                continue
            if kind != M.MTMD_INPUT_CHUNK_TYPE_IMAGE:
                raise ImageError("only image input is supported")
            n_tokens = M.mtmd_input_chunk_get_n_tokens(chunk)
            if M.mtmd_input_chunk_get_n_pos(chunk) != n_tokens:
                raise ImageError("this projector's image positions are not supported")
            non_causal = bool(M.mtmd_decode_use_non_causal(self.ptr, chunk))
            if non_causal and n_tokens > self.n_batch:
                raise ImageError(
                    f"an image takes {n_tokens} tokens, decoded in one batch: num_batch must be at least {n_tokens}"
                )
            if M.mtmd_encode_chunk(self.ptr, chunk) != 0:
                raise ImageError("the image encoder failed")
            out = M.mtmd_get_output_embd(self.ptr)
            embd = np.ctypeslib.as_array(out, shape=(n_tokens * self.n_embd,)).copy()
            image_id = M.mtmd_input_chunk_get_id(chunk) or b""  # the sha256 of the image's bytes
            key = image_id + b":%d" % seen.get(image_id, 0)
            seen[image_id] = seen.get(image_id, 0) + 1
            placeholder = -1 - int.from_bytes(hashlib.sha256(key).digest()[:7], "little")
            images.append(EncodedImage(len(tokens), n_tokens, non_causal, embd))
            tokens.extend([placeholder] * n_tokens)
        if images and images[-1].start + images[-1].n_tokens == len(tokens):
            raise ImageError("the prompt cannot end with an image")
        return tokens, tuple(images)
