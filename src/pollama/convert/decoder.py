"""Decoder-only language models: Llama (and Mistral) and Gemma 3 text models.

Mirrors llama.cpp's converter (conversion/llama.py, gemma.py): the same KV keys and
tensor names; Llama's q/k projections are permuted from Hugging Face's rotate-half layout
to llama.cpp's interleaved rotary layout, Gemma's RMSNorm weights get their +1 folded in.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from pollama.convert.errors import ConvertError
from pollama.convert.gguf_out import OutTensor, Progress, weight_dtype, write_gguf
from pollama.convert.tensors import TensorRef, read_tensors
from pollama.convert.vocab import decoder_vocab

LLAMA = {"LlamaForCausalLM", "MistralForCausalLM"}
GEMMA3 = {"Gemma3ForCausalLM", "Gemma3ForConditionalGeneration"}

_LAYER = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "self_attn.q_norm": "attn_q_norm",
    "self_attn.k_norm": "attn_k_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
}
_LLAMA_LAYER = {**_LAYER, "post_attention_layernorm": "ffn_norm"}
_GEMMA_LAYER = {
    **_LAYER,
    "post_attention_layernorm": "post_attention_norm",
    "pre_feedforward_layernorm": "ffn_norm",
    "post_feedforward_layernorm": "post_ffw_norm",
}


def _int(cfg: dict[str, Any], key: str, default: int | None = None) -> int:
    value = cfg.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConvertError(f"config.json: {key} must be a positive integer")
    return value


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """HF rotate-half rows -> llama.cpp's interleaved pairs (inverse of HF's conversion)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _llama3_rope_factors(cfg: dict[str, Any], rs: dict[str, Any], head_dim: int) -> np.ndarray:
    base = float(cfg.get("rope_theta", 10000.0))
    freqs = 1.0 / (base ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))
    factor = float(rs.get("factor", 8.0))
    low, high = float(rs.get("low_freq_factor", 1.0)), float(rs.get("high_freq_factor", 4.0))
    old_ctx = float(rs.get("original_max_position_embeddings", 8192))
    low_wavelen, high_wavelen = old_ctx / low, old_ctx / high
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def convert(
    src: Path, cfg: dict[str, Any], out_path: Path, progress: Progress | None, source: str | None
) -> None:
    arch_name = cfg["architectures"][0]
    gemma = arch_name in GEMMA3
    if gemma and isinstance(cfg.get("text_config"), dict):
        cfg = {**cfg["text_config"], "architectures": cfg["architectures"]}
    arch = "gemma3" if gemma else "llama"
    hidden = _int(cfg, "hidden_size")
    n_layers = _int(cfg, "num_hidden_layers")
    n_head = _int(cfg, "num_attention_heads")
    n_kv = _int(cfg, "num_key_value_heads", n_head)
    head_dim = (
        _int(cfg, "head_dim", hidden // n_head) if cfg.get("head_dim") is not None else hidden // n_head
    )
    if n_head % n_kv:
        raise ConvertError("config.json: num_attention_heads is not a multiple of num_key_value_heads")
    refs = read_tensors(src)
    vocab = decoder_vocab(src, cfg.get("vocab_size") if isinstance(cfg.get("vocab_size"), int) else None)
    n_vocab = len(vocab.tokens)

    out: list[OutTensor] = []
    layer_map = _GEMMA_LAYER if gemma else _LLAMA_LAYER
    for hf_name in sorted(refs):
        name = hf_name
        if gemma:
            if name.startswith(("vision_tower.", "multi_modal_projector.", "model.vision_tower.",
                                "model.multi_modal_projector.")):  # fmt: skip
                continue  # the text model only: vision needs a projector GGUF, not written here
            name = name.replace("language_model.model.", "model.").replace("model.language_model.", "model.")
            name = name.removeprefix("language_model.")
        if name.endswith(("rotary_emb.inv_freq", "self_attn.rotary_emb.inv_freq")):
            continue
        ref = refs[hf_name]
        gguf_name, transform = _map(name, ref, n_layers, layer_map, gemma, n_head, n_kv, n_vocab)
        if gguf_name is None:
            continue
        if gemma and gguf_name == "output.weight":
            continue  # tied to token_embd in Gemma
        shape = (n_vocab, ref.shape[1]) if gguf_name in ("token_embd.weight", "output.weight") else ref.shape
        out.append(OutTensor(gguf_name, shape, weight_dtype(gguf_name, shape), transform))

    names = {t.name for t in out}
    need = ["token_embd.weight", "output_norm.weight"]
    need += [
        f"blk.{i}.{n}.weight"
        for i in range(n_layers)
        for n in set(layer_map.values()) - {"attn_q_norm", "attn_k_norm"}
    ]
    if gemma:
        need += [f"blk.{i}.{n}.weight" for i in range(n_layers) for n in ("attn_q_norm", "attn_k_norm")]
    missing = sorted(set(need) - names)
    if missing:
        raise ConvertError(f"missing tensors: {', '.join(missing[:5])}")

    w = gguf.GGUFWriter(None, arch)
    w.add_name(str(cfg.get("_name_or_path") or src.name))
    if source:
        w.add_source_url(source)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_context_length(_int(cfg, "max_position_embeddings", 131072 if gemma else 4096))
    w.add_embedding_length(hidden)
    w.add_block_count(n_layers)
    w.add_feed_forward_length(_int(cfg, "intermediate_size"))
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_layer_norm_rms_eps(float(cfg.get("rms_norm_eps", 1e-6)))
    rs = cfg.get("rope_scaling")
    rope_type = (rs or {}).get("rope_type", (rs or {}).get("type")) if isinstance(rs, dict) else None
    if gemma:
        if cfg.get("attn_logit_softcapping") is not None or cfg.get("final_logit_softcapping") is not None:
            raise ConvertError("Gemma 3 models with logit soft-capping are not supported")
        scalar = cfg.get("query_pre_attn_scalar", head_dim)
        if scalar != head_dim:
            raise ConvertError("Gemma 3: query_pre_attn_scalar different from head_dim is not supported")
        if float(cfg.get("rope_local_base_freq", 10000.0)) != 10000.0:
            raise ConvertError("Gemma 3: llama.cpp uses rope base 10000 for local layers; this model differs")
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
        w.add_rope_freq_base(float(cfg.get("rope_theta", 1_000_000.0)))
        w.add_sliding_window(_int(cfg, "sliding_window"))
        if rope_type not in (None, "linear", "default"):
            raise ConvertError(f"Gemma 3: unsupported rope scaling {rope_type!r}")
    else:
        w.add_vocab_size(n_vocab)
        w.add_rope_dimension_count(head_dim)
        if head_dim != hidden // n_head:
            w.add_key_length(head_dim)
            w.add_value_length(head_dim)
        w.add_rope_freq_base(float(cfg.get("rope_theta", 10000.0)))
        if rope_type == "llama3":
            factors = _llama3_rope_factors(cfg, rs, head_dim)
            out.append(OutTensor("rope_freqs.weight", factors.shape, np.float32, lambda f=factors: f))
        elif rope_type not in (None, "linear", "default"):
            raise ConvertError(f"unsupported rope scaling {rope_type!r}")
    if rope_type == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(float(rs["factor"]))
    if gemma:
        vocab.flags["tokenizer.ggml.add_space_prefix"] = False  # as llama.cpp's Gemma 3 converter
    vocab.add_to(w)
    write_gguf(w, out, out_path, progress)


def _map(
    name: str,
    ref: TensorRef,
    n_layers: int,
    layer_map: dict[str, str],
    gemma: bool,
    n_head: int,
    n_kv: int,
    n_vocab: int,
):
    """(gguf name, producer) for one HF tensor; (None, None) for tensors that are not written."""
    stem, _, kind = name.rpartition(".")
    if kind != "weight":
        raise ConvertError(f"unexpected tensor {name!r} (biases are not supported for this architecture)")
    plus_one = gemma and stem.endswith("norm")

    def load() -> np.ndarray:
        data = ref.load()
        return data.astype(np.float32) + 1.0 if plus_one else data

    if stem == "model.embed_tokens" or stem == "lm_head":
        gguf_name = "token_embd.weight" if stem == "model.embed_tokens" else "output.weight"
        if ref.shape[0] < n_vocab:
            raise ConvertError(f"{name} has {ref.shape[0]} rows but the vocabulary has {n_vocab} tokens")
        return gguf_name, lambda: ref.load()[:n_vocab]
    if stem == "model.norm":
        return "output_norm.weight", load
    parts = stem.split(".", 3)
    if len(parts) == 4 and parts[:2] == ["model", "layers"] and parts[2].isdigit() and parts[3] in layer_map:
        i = int(parts[2])
        if i >= n_layers:
            raise ConvertError(f"tensor {name!r} is beyond num_hidden_layers")
        short = layer_map[parts[3]]
        if not gemma and short in ("attn_q", "attn_k"):
            heads = n_head if short == "attn_q" else n_kv
            return f"blk.{i}.{short}.weight", lambda: _permute(ref.load(), heads)
        return f"blk.{i}.{short}.weight", load
    raise ConvertError(f"unexpected tensor {name!r}")
