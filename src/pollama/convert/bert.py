"""BERT-family encoders (sentence-transformers models such as all-MiniLM-L6-v2) to GGUF `bert`.

Mirrors llama.cpp's converter (conversion/bert.py): the same KV keys, tensor names and
WordPiece vocabulary form, so llama.cpp tokenizes and pools exactly like the source model.
Pooling comes from the sentence-transformers config (modules.json -> Pooling/config.json);
a plain BertModel without one pools the [CLS] token, as transformers' pooler does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from pollama.convert.errors import ConvertError
from pollama.convert.gguf_out import OutTensor, Progress, weight_dtype, write_gguf
from pollama.convert.tensors import read_tensors
from pollama.convert.vocab import wordpiece_vocab

ARCHITECTURES = {"BertModel", "BertForMaskedLM", "BertForSequenceClassification", "BertForPreTraining"}

_TOP = {
    "embeddings.word_embeddings": "token_embd",
    "embeddings.position_embeddings": "position_embd",
    "embeddings.token_type_embeddings": "token_types",
    "embeddings.LayerNorm": "token_embd_norm",
}
_LAYER = {
    "attention.self.query": "attn_q",
    "attention.self.key": "attn_k",
    "attention.self.value": "attn_v",
    "attention.output.dense": "attn_output",
    "attention.output.LayerNorm": "attn_output_norm",
    "intermediate.dense": "ffn_up",
    "output.dense": "ffn_down",
    "output.LayerNorm": "layer_output_norm",
}
_SKIP_PREFIXES = ("pooler.", "cls.", "classifier.", "embeddings.position_ids")
_KIND = {"weight": "weight", "bias": "bias", "gamma": "weight", "beta": "bias"}


def pooling_type(src: Path) -> gguf.PoolingType:
    """sentence-transformers' pooling mode, or CLS without a sentence-transformers config."""
    modules = src / "modules.json"
    if not modules.is_file():
        return gguf.PoolingType.CLS
    try:
        entries = json.loads(modules.read_text(encoding="utf-8"))
        path = next(m["path"] for m in entries if m.get("type", "").endswith(".Pooling"))
        pooling = json.loads((src / path / "config.json").read_text(encoding="utf-8"))
    except StopIteration:
        return gguf.PoolingType.CLS
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConvertError(f"invalid sentence-transformers pooling config: {exc}") from exc
    if pooling.get("pooling_mode_mean_tokens"):
        return gguf.PoolingType.MEAN
    if pooling.get("pooling_mode_cls_token"):
        return gguf.PoolingType.CLS
    if pooling.get("pooling_mode_lasttoken"):
        return gguf.PoolingType.LAST
    raise ConvertError("unsupported pooling mode: only mean, cls and last-token pooling are supported")


def _gguf_name(hf_name: str, n_layers: int) -> str | None:
    name = hf_name.removeprefix("bert.")
    if name.startswith(_SKIP_PREFIXES):
        return None
    stem, _, kind = name.rpartition(".")
    if kind not in _KIND:
        raise ConvertError(f"unexpected tensor {hf_name!r}")
    if stem in _TOP:
        return f"{_TOP[stem]}.{_KIND[kind]}"
    parts = stem.split(".", 3)
    if len(parts) == 4 and parts[:2] == ["encoder", "layer"] and parts[2].isdigit() and parts[3] in _LAYER:
        if int(parts[2]) >= n_layers:
            raise ConvertError(f"tensor {hf_name!r} is beyond num_hidden_layers")
        return f"blk.{parts[2]}.{_LAYER[parts[3]]}.{_KIND[kind]}"
    raise ConvertError(f"unexpected tensor {hf_name!r}")


def _int(cfg: dict[str, Any], key: str) -> int:
    value = cfg.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConvertError(f"config.json: {key} must be a positive integer")
    return value


def convert(
    src: Path, cfg: dict[str, Any], out_path: Path, progress: Progress | None, source: str | None
) -> None:
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        raise ConvertError("only absolute position embeddings are supported for BERT models")
    if cfg.get("hidden_act", "gelu") not in ("gelu", "gelu_new"):
        raise ConvertError(f"unsupported BERT activation {cfg.get('hidden_act')!r}")
    n_layers = _int(cfg, "num_hidden_layers")
    hidden = _int(cfg, "hidden_size")
    heads = _int(cfg, "num_attention_heads")
    if hidden % heads:
        raise ConvertError("config.json: hidden_size is not a multiple of num_attention_heads")
    refs = read_tensors(src)
    vocab = wordpiece_vocab(src)
    out: list[OutTensor] = []
    for hf_name in sorted(refs):
        name = _gguf_name(hf_name, n_layers)
        if name is None:
            continue
        ref = refs[hf_name]
        dtype = weight_dtype(name, ref.shape)
        if name.startswith(("position_embd", "token_types")):
            dtype = np.float32
        out.append(OutTensor(name, ref.shape, dtype, ref.load))
    have = {t.name for t in out}
    need = ["token_embd.weight", "position_embd.weight", "token_embd_norm.weight"]
    need += [f"blk.{i}.{p}.weight" for i in range(n_layers) for p in _LAYER.values()]
    missing = [n for n in need if n not in have]
    if missing:
        raise ConvertError(f"missing tensors: {', '.join(missing[:5])}")
    rows = next(t.shape[0] for t in out if t.name == "token_embd.weight")
    if rows != len(vocab.tokens):
        raise ConvertError(f"vocabulary has {len(vocab.tokens)} tokens but the embeddings have {rows} rows")

    w = gguf.GGUFWriter(None, "bert")
    w.add_name(cfg.get("_name_or_path", "") or src.name)
    if source:
        w.add_source_url(source)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_context_length(_int(cfg, "max_position_embeddings"))
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(_int(cfg, "intermediate_size"))
    w.add_block_count(n_layers)
    w.add_head_count(heads)
    w.add_layer_norm_eps(float(cfg.get("layer_norm_eps", 1e-12)))
    w.add_causal_attention(False)
    w.add_pooling_type(pooling_type(src))
    vocab.add_to(w)
    w.add_token_type_count(int(cfg.get("type_vocab_size", 2)))
    write_gguf(w, out, out_path, progress)
