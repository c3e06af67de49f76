"""Llama and Gemma 3 conversion on tiny models with random BF16 weights and real tokenizers:
llama.cpp must tokenize like the source tokenizer and compute the same logits as a numpy
forward pass that follows transformers (which checks the q/k permutation, the Gemma norm
+1, rotary layouts, GQA and the BF16 widening)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import gguf
import numpy as np
import pytest

from pollama.convert import ConvertError, convert_safetensors
from pollama.store.gguf_meta import read_gguf
from tests.convert import hfmodels

LLAMA3_REGEX = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
CORPUS = [
    "The quick brown fox jumps over the lazy dog. It's 3.14159 o'clock!",
    "Hello, world! Ünïcödé tëxt with àccents, emoji 😀 and 日本語.",
    "def add(a, b):\n    return a + b  # 12345 67890\n\n\ttabs",
    "Les élèves étudient l'économie; naïve café résumé.",
] * 20
SAMPLES = [
    "The quick brown fox",
    "It's 1234567 o'clock, isn't it?",
    "  leading spaces and\ttabs\n\nnewlines  ",
    "Ünïcödé 😀 日本語 àccents",
    "unseen wordzzz qqq 999",
    "<|begin_of_text|>special in text",
    "",
]


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    src = tmp_path_factory.mktemp("llama")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=700,
        special_tokens=["<|begin_of_text|>", "<|end_of_text|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", 0)]
    )
    data = json.loads(tok.to_str())
    data["model"]["ignore_merges"] = True  # as Llama 3's tokenizer.json (llama.cpp's llama-bpe does this)
    (src / "tokenizer.json").write_text(json.dumps(data))
    (src / "tokenizer_config.json").write_text(
        json.dumps({"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"})
    )
    n_vocab = tok.get_vocab_size()
    cfg = {
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-5,
        "rope_theta": 500000.0,
        "max_position_embeddings": 256,
        "vocab_size": n_vocab,
        "tie_word_embeddings": False,
        "bos_token_id": 0,
        "eos_token_id": 1,
    }
    (src / "config.json").write_text(json.dumps(cfg))
    stored = hfmodels.save_bf16_safetensors(
        src / "model.safetensors", hfmodels.random_weights(cfg, n_vocab, gemma=False)
    )
    return src, cfg, stored


def test_llama_tokenizer_and_logits(llama_dir, tmp_path: Path) -> None:
    from tokenizers import Tokenizer

    from pollama.engine.llama import Model

    src, cfg, weights = llama_dir
    out = tmp_path / "llama.gguf"
    convert_safetensors(src, out)
    reader = gguf.GGUFReader(out)
    assert reader.fields["general.architecture"].contents() == "llama"
    assert reader.fields["tokenizer.ggml.pre"].contents() == "llama-bpe"
    hf = Tokenizer.from_file(str(src / "tokenizer.json"))
    model = Model(out, vocab_only=True)
    try:
        for text in SAMPLES + CORPUS[:4]:
            assert model.tokenize(text, add_special=True, parse_special=True) == hf.encode(text).ids, text
        ids = model.tokenize("The quick brown fox jumps over", add_special=True)
    finally:
        model.close()
    want = hfmodels.forward(weights, cfg, ids, gemma=False)
    got = hfmodels.llama_cpp_last_logits(out, ids)
    assert _cos(got, want) > 0.999
    assert int(np.argmax(got)) == int(np.argmax(want))


def _write_spm(path: Path, tokens: list[str], scores: list[float], types: list[int]) -> None:
    """A SentencePiece ModelProto (BPE, no dummy prefix, byte fallback), as protobuf bytes."""

    def varint(n: int) -> bytes:
        out = bytearray()
        n &= (1 << 64) - 1
        while True:
            b = n & 0x7F
            n >>= 7
            out.append(b | (0x80 if n else 0))
            if not n:
                return bytes(out)

    def field(num: int, wire: int, payload: bytes | int) -> bytes:
        key = varint(num << 3 | wire)
        if wire == 0:
            return key + varint(payload)
        if wire == 5:
            return key + payload
        return key + varint(len(payload)) + payload

    body = bytearray()
    for tok, score, kind in zip(tokens, scores, types, strict=True):
        piece = field(1, 2, tok.encode("utf-8", "surrogatepass")) + field(2, 5, struct.pack("<f", score))
        body += field(1, 2, piece + field(3, 0, int(kind)))
    trainer = (
        field(3, 0, 2)
        + field(35, 0, 1)
        + field(40, 0, 3)
        + field(41, 0, 2)
        + field(42, 0, 1)
        + field(43, 0, 0)
    )
    body += field(2, 2, trainer)
    body += field(3, 2, field(1, 2, b"identity") + field(3, 0, 0) + field(4, 0, 0))
    path.write_bytes(bytes(body))


@pytest.fixture(scope="module")
def gemma_dir(server, tmp_path_factory: pytest.TempPathFactory):
    """A tiny Gemma 3 whose tokenizer.model holds the real Gemma 3 vocabulary, taken from the
    bundled gemma3:270m GGUF (pieces, scores and types as Google's model has them)."""
    from pollama.names import ModelName
    from pollama.store import Store

    bundled = Store(server.models, noprune=True).resolve(ModelName.parse("gemma3:270m-text")).model_path
    kv = read_gguf(bundled).kv  # gguf.GGUFReader takes minutes over 262k strings
    tokens, scores, types = (
        kv["tokenizer.ggml.tokens"],
        kv["tokenizer.ggml.scores"],
        kv["tokenizer.ggml.token_type"],
    )
    src = tmp_path_factory.mktemp("gemma3")
    _write_spm(src / "tokenizer.model", tokens, scores, types)
    (src / "tokenizer_config.json").write_text(
        json.dumps(
            {"add_bos_token": True, "add_eos_token": False, "bos_token": "<bos>", "eos_token": "<eos>"}
        )
    )
    cfg = {
        "architectures": ["Gemma3ForCausalLM"],
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 6,  # the sixth is a global-attention layer
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 32,
        "query_pre_attn_scalar": 32,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "rope_local_base_freq": 10000.0,
        "sliding_window": 512,
        "max_position_embeddings": 32768,
        "vocab_size": len(tokens),
        "bos_token_id": 2,
        "eos_token_id": 1,
        "pad_token_id": 0,
    }
    (src / "config.json").write_text(json.dumps(cfg))
    stored = hfmodels.save_bf16_safetensors(
        src / "model.safetensors", hfmodels.random_weights(cfg, len(tokens), gemma=True)
    )
    return src, cfg, stored, bundled


def test_gemma3_vocab_tokenizer_and_logits(gemma_dir, tmp_path: Path) -> None:
    from pollama.engine.llama import Model

    src, cfg, weights, bundled = gemma_dir
    out = tmp_path / "gemma3.gguf"
    convert_safetensors(src, out)
    ours, theirs = read_gguf(out).kv, read_gguf(bundled).kv
    for key in ("general.architecture", "tokenizer.ggml.model", "tokenizer.ggml.bos_token_id",
                "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id",
                "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token", "tokenizer.ggml.add_space_prefix"):  # fmt: skip
        assert ours[key] == theirs[key], key
    for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"):
        assert list(ours[key]) == list(theirs[key]), key
    assert "output.weight" not in {t.name for t in read_gguf(out).tensors}  # tied embeddings
    texts = [*SAMPLES, "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n", "   x  \n\n\n y"]
    a, b = Model(out, vocab_only=True), Model(bundled, vocab_only=True)
    try:
        for text in texts:
            assert a.tokenize(text) == b.tokenize(text), text
        ids = a.tokenize("The quick brown fox jumps over the lazy dog")
    finally:
        a.close()
        b.close()
    want = hfmodels.forward(weights, cfg, ids, gemma=True)
    got = hfmodels.llama_cpp_last_logits(out, ids)
    assert _cos(got, want) > 0.999
    assert int(np.argmax(got)) == int(np.argmax(want))


def test_unsupported_decoder_configs(llama_dir, tmp_path: Path) -> None:
    import shutil

    src, cfg, _ = llama_dir
    bad = tmp_path / "bad"
    shutil.copytree(src, bad)
    (bad / "config.json").write_text(json.dumps({**cfg, "rope_scaling": {"rope_type": "yarn", "factor": 4}}))
    with pytest.raises(ConvertError, match="unsupported rope scaling 'yarn'"):
        convert_safetensors(bad, tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()
    (bad / "config.json").write_text(json.dumps({**cfg, "num_key_value_heads": 3}))
    with pytest.raises(ConvertError, match="not a multiple"):
        convert_safetensors(bad, tmp_path / "x.gguf")
