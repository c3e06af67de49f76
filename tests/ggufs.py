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
