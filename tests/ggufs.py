"""Small real GGUF files for tests, written with the `gguf` package.

`tiny_llama` is a complete llama-architecture model (SentencePiece vocabulary with byte
fallback, two blocks, random weights) that llama.cpp loads, quantizes and generates with
— nonsense text, but real tokens; greedy decoding never picks EOS, so a generation always
yields tokens. Dimensions are multiples of 256 so k-quants apply.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

N_EMBD, N_FF, N_LAYER, N_HEAD = 256, 512, 2, 4
WORDS = ["▁the", "▁a", "▁sky", "▁is", "▁blue", "▁hello", "▁world", "▁why"]


def vocabulary() -> tuple[list[str], list[float], list[int]]:
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + WORDS
    scores = [0.0, 0.0, 0.0] + [0.0] * 256 + [-float(i) for i in range(len(WORDS))]
    types = [2, 3, 3] + [6] * 256 + [1] * len(WORDS)  # unknown, control, byte, normal
    return tokens, scores, types


def tiny_llama(
    path: Path,
    *,
    dtype: type = np.float32,
    name: str = "tiny",
    seed: int = 0,
    split: tuple[int, int] | None = None,
    tensors: list[str] | None = None,
    chat_template: str | None = None,
) -> Path:
    """Write the model to `path`; F32 by default, F16 with dtype=np.float16.
    `split=(no, count)` with `tensors` writes one shard of a split model."""
    rng = np.random.default_rng(seed)
    tokens, scores, types = vocabulary()
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(name)
    w.add_file_type(gguf.LlamaFileType.ALL_F32 if dtype == np.float32 else gguf.LlamaFileType.MOSTLY_F16)
    w.add_context_length(512)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(N_EMBD // N_HEAD)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    if chat_template:
        w.add_chat_template(chat_template)
    if split:
        w.add_uint16("split.no", split[0])
        w.add_uint16("split.count", split[1])
        w.add_int32("split.tensors.count", len(all_tensors()))
    for tname, shape in all_tensors().items():
        if tensors is not None and tname not in tensors:
            continue
        norm = tname.endswith("norm.weight")
        data = np.ones(shape, dtype=np.float32) if norm else rng.normal(0, 0.02, shape).astype(np.float32)
        if tname == "token_embd.weight":
            data[2] = 0  # EOS: its (tied) logit is 0, never the largest, so greedy output never ends early
        w.add_tensor(tname, data.astype(np.float32 if norm else dtype))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def all_tensors() -> dict[str, tuple[int, ...]]:
    """Tensor names and numpy shapes (rows, cols) of the tiny model."""
    n_vocab = len(vocabulary()[0])
    out: dict[str, tuple[int, ...]] = {
        "token_embd.weight": (n_vocab, N_EMBD),
        "output_norm.weight": (N_EMBD,),
    }
    for i in range(N_LAYER):
        b = f"blk.{i}."
        out |= {
            b + "attn_norm.weight": (N_EMBD,),
            b + "attn_q.weight": (N_EMBD, N_EMBD),
            b + "attn_k.weight": (N_EMBD, N_EMBD),
            b + "attn_v.weight": (N_EMBD, N_EMBD),
            b + "attn_output.weight": (N_EMBD, N_EMBD),
            b + "ffn_norm.weight": (N_EMBD,),
            b + "ffn_gate.weight": (N_FF, N_EMBD),
            b + "ffn_up.weight": (N_FF, N_EMBD),
            b + "ffn_down.weight": (N_EMBD, N_FF),
        }
    return out


def tiny_projector(path: Path, *, n_embd_text: int = 640, seed: int = 0) -> Path:
    """A Gemma 3 vision projector (SigLIP-style encoder + pooled projection) with random
    weights and tiny dimensions, in the mmproj layout llama.cpp's libmtmd loads (clip.cpp:
    `clip.*` keys, `v.*`/`mm.*` tensors). A 32x32 input gives 8x8 patches pooled 2x2: 16
    image tokens of `n_embd_text` (which must equal the text model's embedding size)."""
    n_embd, n_ff, image_size, patch = 64, 128, 32, 4
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(str(path), "clip")
    w.add_name("tiny-gemma3-projector")
    w.add_bool("clip.has_vision_encoder", True)
    w.add_string("clip.projector_type", "gemma3")
    w.add_bool("clip.use_gelu", True)
    w.add_uint32("clip.vision.image_size", image_size)
    w.add_uint32("clip.vision.patch_size", patch)
    w.add_uint32("clip.vision.embedding_length", n_embd)
    w.add_uint32("clip.vision.feed_forward_length", n_ff)
    w.add_uint32("clip.vision.block_count", 1)
    w.add_uint32("clip.vision.attention.head_count", 2)
    w.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-6)
    w.add_uint32("clip.vision.projection_dim", n_embd_text)
    w.add_uint32("clip.vision.projector.scale_factor", 2)
    w.add_array("clip.vision.image_mean", [0.5, 0.5, 0.5])
    w.add_array("clip.vision.image_std", [0.5, 0.5, 0.5])

    def rand(*shape: int, scale: float = 0.2) -> np.ndarray:
        return rng.normal(0, scale, shape).astype(np.float32)

    ones, zeros = np.ones(n_embd, np.float32), np.zeros(n_embd, np.float32)
    tensors = {
        "v.patch_embd.weight": rand(n_embd, 3, patch, patch),
        "v.patch_embd.bias": rand(n_embd),
        "v.position_embd.weight": rand((image_size // patch) ** 2, n_embd),
        "v.blk.0.ln1.weight": ones,
        "v.blk.0.ln1.bias": zeros,
        "v.blk.0.ln2.weight": ones,
        "v.blk.0.ln2.bias": zeros,
        "v.blk.0.ffn_up.weight": rand(n_ff, n_embd),
        "v.blk.0.ffn_up.bias": rand(n_ff),
        "v.blk.0.ffn_down.weight": rand(n_embd, n_ff),
        "v.blk.0.ffn_down.bias": rand(n_embd),
        "v.post_ln.weight": ones,
        "v.post_ln.bias": zeros,
        "mm.soft_emb_norm.weight": ones,
        "mm.input_projection.weight": rand(n_embd, n_embd_text, scale=1.0),
    }
    for t in ("attn_q", "attn_k", "attn_v", "attn_out"):
        tensors[f"v.blk.0.{t}.weight"] = rand(n_embd, n_embd)
        tensors[f"v.blk.0.{t}.bias"] = rand(n_embd)
    for name, data in tensors.items():
        w.add_tensor(name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def png(rgb: np.ndarray) -> bytes:
    """An RGB uint8 array (height, width, 3) as PNG file bytes."""
    import struct
    import zlib

    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].astype(np.uint8).tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
