"""An independent numpy forward pass of a BERT sentence-transformers model (MiniLM): the
reference the converted GGUF's embeddings are checked against.

It reads the original safetensors and tokenizes with the Hugging Face `tokenizers` package,
then runs embeddings -> N x (self-attention, GELU MLP, post-LayerNorm) -> mean pooling ->
L2 normalization, as sentence-transformers' Transformer+Pooling+Normalize modules do.
(Checked once by hand against sentence-transformers 6.2.0 on torch 2.13.0 CPU: cosine
1.0000000 on four sentences; torch is not a test dependency because it would make the
test install several times slower.)
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

_erf = np.frompyfunc(math.erf, 1, 1)


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


def embed(model_dir: Path, texts: list[str]) -> list[np.ndarray]:
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    w = {k: v.astype(np.float64) for k, v in load_file(str(model_dir / "model.safetensors")).items()}
    cfg = json.loads((model_dir / "config.json").read_text())
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    hidden, heads, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]

    def layer_norm(x: np.ndarray, p: str) -> np.ndarray:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * w[p + ".weight"] + w[p + ".bias"]

    def linear(x: np.ndarray, p: str) -> np.ndarray:
        return x @ w[p + ".weight"].T + w[p + ".bias"]

    out = []
    for text in texts:
        ids = tok.encode(text).ids
        n = len(ids)
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:n]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = layer_norm(x, "embeddings.LayerNorm")
        for i in range(cfg["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            q, k, v = (
                linear(x, p + "attention.self." + part).reshape(n, heads, -1).transpose(1, 0, 2)
                for part in ("query", "key", "value")
            )
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(hidden // heads)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(1, 0, 2).reshape(n, hidden)
            x = layer_norm(
                x + linear(context, p + "attention.output.dense"), p + "attention.output.LayerNorm"
            )
            h = _gelu(linear(x, p + "intermediate.dense"))
            x = layer_norm(x + linear(h, p + "output.dense"), p + "output.LayerNorm")
        pooled = x.mean(0)
        out.append(pooled / np.linalg.norm(pooled))
    return out
