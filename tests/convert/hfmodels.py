"""Tiny Hugging Face-layout decoder models for the converter tests: random weights (stored
as BF16, as real checkpoints are), real tokenizers, and numpy reference forward passes that
follow the transformers implementations (rotate-half RoPE on the HF weights, GQA, ...)."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np


def to_bf16(x: np.ndarray) -> np.ndarray:
    """Round float32 to bfloat16 (kept as float32 holding the rounded value) and its bits."""
    bits = x.astype(np.float32).view(np.uint32)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    return rounded


def bf16_values(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def save_bf16_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Write tensors as BF16; returns the values actually stored (as float32)."""
    header, blobs, offset, stored = {}, [], 0, {}
    for name, arr in tensors.items():
        bits = to_bf16(arr)
        data = bits.tobytes()
        header[name] = {
            "dtype": "BF16",
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
        stored[name] = bf16_values(bits)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for blob in blobs:
            f.write(blob)
    return stored


def rms_norm(x: np.ndarray, w: np.ndarray, eps: float, plus_one: bool) -> np.ndarray:
    x = x / np.sqrt((x * x).mean(-1, keepdims=True) + eps)
    return x * ((1.0 + w) if plus_one else w)


def rope(x: np.ndarray, theta: float) -> np.ndarray:
    """transformers' rotate-half RoPE; x: (n_tokens, heads, head_dim)."""
    n, _, hd = x.shape
    inv = 1.0 / theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd)
    ang = np.arange(n)[:, None] * inv[None, :]
    cos, sin = (
        np.cos(np.concatenate([ang, ang], -1))[:, None, :],
        np.sin(np.concatenate([ang, ang], -1))[:, None, :],
    )
    half = hd // 2
    rotated = np.concatenate([-x[..., half:], x[..., :half]], -1)
    return x * cos + rotated * sin


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float) -> np.ndarray:
    n, heads, hd = q.shape
    rep = heads // k.shape[1]
    k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
    s = np.einsum("qhd,khd->hqk", q, k) * scale
    s = s + np.triu(np.full((n, n), -np.inf), 1)
    s = np.exp(s - s.max(-1, keepdims=True))
    s /= s.sum(-1, keepdims=True)
    return np.einsum("hqk,khd->qhd", s, v).reshape(n, heads * hd)


def forward(w: dict[str, np.ndarray], cfg: dict, ids: list[int], *, gemma: bool) -> np.ndarray:
    """Logits of the last position."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    hidden, heads, kv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or hidden // heads
    eps = cfg["rms_norm_eps"]
    h = w["model.embed_tokens.weight"][ids]
    if gemma:
        h = h * math.sqrt(hidden)
    n = len(ids)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        x = rms_norm(h, w[p + "input_layernorm.weight"], eps, gemma)
        q = (x @ w[p + "self_attn.q_proj.weight"].T).reshape(n, heads, hd)
        k = (x @ w[p + "self_attn.k_proj.weight"].T).reshape(n, kv, hd)
        v = (x @ w[p + "self_attn.v_proj.weight"].T).reshape(n, kv, hd)
        if gemma:
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"], eps, True)
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"], eps, True)
            theta = cfg["rope_theta"] if (i + 1) % 6 == 0 else cfg["rope_local_base_freq"]
            scale = cfg["query_pre_attn_scalar"] ** -0.5
        else:
            theta, scale = cfg["rope_theta"], hd**-0.5
        o = attention(rope(q, theta), rope(k, theta), v, scale) @ w[p + "self_attn.o_proj.weight"].T
        if gemma:
            o = rms_norm(o, w[p + "post_attention_layernorm.weight"], eps, True)
            h = h + o
            x = rms_norm(h, w[p + "pre_feedforward_layernorm.weight"], eps, True)
            g = x @ w[p + "mlp.gate_proj.weight"].T
            g = 0.5 * g * (1 + np.tanh(math.sqrt(2 / math.pi) * (g + 0.044715 * g**3)))
            m = (g * (x @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
            h = h + rms_norm(m, w[p + "post_feedforward_layernorm.weight"], eps, True)
        else:
            h = h + o
            x = rms_norm(h, w[p + "post_attention_layernorm.weight"], eps, False)
            g = x @ w[p + "mlp.gate_proj.weight"].T
            m = ((g / (1 + np.exp(-g))) * (x @ w[p + "mlp.up_proj.weight"].T)) @ w[
                p + "mlp.down_proj.weight"
            ].T
            h = h + m
    final = rms_norm(h[-1], w["model.norm.weight"], eps, gemma)
    head = w["model.embed_tokens.weight"] if gemma or "lm_head.weight" not in w else w["lm_head.weight"]
    return final @ head.T


def random_weights(cfg: dict, n_vocab: int, *, gemma: bool, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    hidden, heads, kv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or hidden // heads
    ffn = cfg["intermediate_size"]

    def mat(rows: int, cols: int, std: float = 0.08) -> np.ndarray:
        return rng.normal(0, std, (rows, cols)).astype(np.float32)

    def norm(size: int) -> np.ndarray:
        return (rng.normal(0, 0.1, size) + (0.0 if gemma else 1.0)).astype(np.float32)

    w = {
        "model.embed_tokens.weight": mat(n_vocab, hidden, 0.5 if not gemma else 0.1),
        "model.norm.weight": norm(hidden),
    }
    if not gemma:
        w["lm_head.weight"] = mat(n_vocab, hidden)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "self_attn.q_proj.weight"] = mat(heads * hd, hidden)
        w[p + "self_attn.k_proj.weight"] = mat(kv * hd, hidden)
        w[p + "self_attn.v_proj.weight"] = mat(kv * hd, hidden)
        w[p + "self_attn.o_proj.weight"] = mat(hidden, heads * hd)
        w[p + "mlp.gate_proj.weight"] = mat(ffn, hidden)
        w[p + "mlp.up_proj.weight"] = mat(ffn, hidden)
        w[p + "mlp.down_proj.weight"] = mat(hidden, ffn)
        w[p + "input_layernorm.weight"] = norm(hidden)
        w[p + "post_attention_layernorm.weight"] = norm(hidden)
        if gemma:
            w[p + "pre_feedforward_layernorm.weight"] = norm(hidden)
            w[p + "post_feedforward_layernorm.weight"] = norm(hidden)
            w[p + "self_attn.q_norm.weight"] = norm(hd)
            w[p + "self_attn.k_norm.weight"] = norm(hd)
    return w


def llama_cpp_last_logits(gguf_path: Path, ids: list[int]) -> np.ndarray:
    import ctypes

    import llama_cpp as L

    from pollama.engine.llama import Model

    model = Model(gguf_path)
    cp = L.llama_context_default_params()
    cp.n_ctx = cp.n_batch = cp.n_ubatch = 128
    cp.n_threads = cp.n_threads_batch = 2
    ctx = L.llama_init_from_model(model.ptr, cp)
    batch = L.llama_batch_init(128, 0, 1)
    try:
        for i, t in enumerate(ids):
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = t, i, 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = i == len(ids) - 1
        batch.n_tokens = len(ids)
        assert L.llama_decode(ctx, batch) == 0
        ptr = L.llama_get_logits_ith(ctx, len(ids) - 1)
        arr = np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(model.n_vocab,))
        return np.array(arr, dtype=np.float64)
    finally:
        L.llama_batch_free(batch)
        L.llama_free(ctx)
        model.close()
