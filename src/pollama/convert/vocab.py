"""Tokenizer metadata for GGUF, read from a Hugging Face model folder without transformers.

Each reader returns a `Vocab` whose `add_to` writes the `tokenizer.ggml.*` keys llama.cpp
needs to tokenize exactly like the source tokenizer (checked against `tokenizers` in the
tests): the token list in llama.cpp's form for that tokenizer type, token types, special
token ids and the add-BOS/EOS/SEP flags (gguf.SpecialVocab reads those from tokenizer.json
and tokenizer_config.json the way llama.cpp's own converter does).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf

from pollama.convert.errors import ConvertError

KEY_LOWERCASE = "tokenizer.ggml.normalizer.lowercase"
KEY_STRIP_ACCENTS = "tokenizer.ggml.normalizer.strip_accents"


@dataclass
class Vocab:
    model: str  # tokenizer.ggml.model: bert | gpt2 | llama
    pre: str
    tokens: list[str]
    types: list[int]
    scores: list[float] | None = None
    merges: list[str] = field(default_factory=list)
    special: gguf.SpecialVocab | None = None
    flags: dict[str, bool] = field(default_factory=dict)  # extra bool keys (normalizer, ...)
    extra: dict[str, Any] = field(default_factory=dict)

    def add_to(self, w: gguf.GGUFWriter) -> None:
        w.add_tokenizer_model(self.model)
        w.add_tokenizer_pre(self.pre)
        w.add_token_list(self.tokens)
        w.add_token_types(self.types)
        if self.scores is not None:
            w.add_token_scores(self.scores)
        if self.merges:
            w.add_token_merges(self.merges)
        for key, value in self.flags.items():
            w.add_bool(key, value)
        if self.special is not None:
            self.special.merges = []  # ours (if any) are already written
            self.special.add_to_gguf(w, quiet=True)


def load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConvertError(f"{path.name}: invalid JSON ({exc})") from exc


def _added_tokens(tok_json: dict[str, Any] | None) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for entry in (tok_json or {}).get("added_tokens") or []:
        if (
            isinstance(entry, dict)
            and isinstance(entry.get("id"), int)
            and isinstance(entry.get("content"), str)
        ):
            out[entry["id"]] = entry
    return out


def _ordered(vocab: dict[str, int], what: str) -> list[str]:
    """Tokens by id; ids must be exactly 0..n-1."""
    tokens: list[str | None] = [None] * len(vocab)
    for tok, idx in vocab.items():
        if not isinstance(idx, int) or not 0 <= idx < len(tokens) or tokens[idx] is not None:
            raise ConvertError(f"{what}: token ids are not a dense range 0..{len(vocab) - 1}")
        tokens[idx] = tok
    return tokens  # type: ignore[return-value]


# -- WordPiece (BERT) ------------------------------------------------------------------------


def wordpiece_vocab(src: Path) -> Vocab:
    """llama.cpp's WPM form: a word-initial piece gets a leading '▁' (U+2581, "phantom space"),
    a '##' continuation loses its '##', and control tokens stay as they are."""
    tok_json = load_json(src / "tokenizer.json")
    config = load_json(src / "tokenizer_config.json") or {}
    added = _added_tokens(tok_json)
    if tok_json is not None:
        model = tok_json.get("model") or {}
        if model.get("type") != "WordPiece" or not isinstance(model.get("vocab"), dict):
            raise ConvertError("tokenizer.json: expected a WordPiece tokenizer for a BERT model")
        vocab = dict(model["vocab"])
        for idx, entry in added.items():
            vocab.setdefault(entry["content"], idx)
        tokens = _ordered(vocab, "tokenizer.json")
        prefix = model.get("continuing_subword_prefix", "##")
    elif (src / "vocab.txt").is_file():
        tokens = (src / "vocab.txt").read_text(encoding="utf-8").split("\n")
        if tokens and tokens[-1] == "":
            tokens.pop()
        prefix = "##"
    else:
        raise ConvertError("no tokenizer found (tokenizer.json or vocab.txt)")
    if prefix != "##":
        raise ConvertError(f"unsupported WordPiece continuation prefix {prefix!r}")

    special_names = {
        config.get(k) for k in ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
    } | {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
    control = {i for i, e in added.items() if e.get("special")}
    control |= {i for i, t in enumerate(tokens) if t in special_names}
    out_tokens, types = [], []
    for i, tok in enumerate(tokens):
        if i in control:
            out_tokens.append(tok)
            types.append(gguf.TokenType.CONTROL)
        else:
            out_tokens.append(tok[2:] if tok.startswith("##") else "\u2581" + tok)
            types.append(gguf.TokenType.USER_DEFINED if i in added else gguf.TokenType.NORMAL)

    lowercase, strip_accents = _bert_normalizer(tok_json, config)
    special = gguf.SpecialVocab(src, n_vocab=len(tokens))
    for kind, name in (("bos", "cls_token"), ("sep", "sep_token"),
                       ("pad", "pad_token"), ("unk", "unk_token"), ("mask", "mask_token")):  # fmt: skip
        if kind not in special.special_token_ids and config.get(name) in tokens:
            special.special_token_ids[kind] = tokens.index(config[name])
    for kind, name in (
        ("bos", "[CLS]"),
        ("sep", "[SEP]"),
        ("pad", "[PAD]"),
        ("unk", "[UNK]"),
        ("mask", "[MASK]"),
    ):
        if kind not in special.special_token_ids and name in tokens:
            special.special_token_ids[kind] = tokens.index(name)
    special.special_token_ids.pop("cls", None)  # the bos id is [CLS]; gguf has no cls key writer
    if "bos" not in special.special_token_ids or "sep" not in special.special_token_ids:
        raise ConvertError("the BERT vocabulary has no [CLS]/[SEP] tokens")
    return Vocab(
        model="bert",
        pre="default",
        tokens=out_tokens,
        types=[int(t) for t in types],
        special=special,
        flags={KEY_LOWERCASE: lowercase, KEY_STRIP_ACCENTS: strip_accents},
    )


def _bert_normalizer(tok_json: dict[str, Any] | None, config: dict[str, Any]) -> tuple[bool, bool]:
    """(lowercase, strip_accents) as HF's BertNormalizer applies them: strip_accents unset
    follows lowercase."""
    norm = (tok_json or {}).get("normalizer")
    if isinstance(norm, dict) and norm.get("type") == "Sequence":
        norm = next((n for n in norm.get("normalizers", []) if n.get("type") == "BertNormalizer"), None)
    if isinstance(norm, dict) and norm.get("type") == "BertNormalizer":
        lowercase = bool(norm.get("lowercase", True))
        strip = norm.get("strip_accents")
    else:
        lowercase = bool(config.get("do_lower_case", False))
        strip = config.get("strip_accents")
    return lowercase, bool(lowercase if strip is None else strip)


# -- SentencePiece (Llama 2, Gemma) --------------------------------------------------------


def spm_vocab(src: Path, n_vocab: int | None) -> Vocab:
    """llama.cpp's `llama` (SentencePiece BPE) vocabulary from tokenizer.model, with the
    added-token overrides and padding llama.cpp's converter applies."""
    from pollama.convert import spm

    model = spm.read_spm(src / "tokenizer.model")
    if model.model_type != spm.BPE:
        raise ConvertError(
            "tokenizer.model: only BPE SentencePiece models are supported (this one is unigram)"
        )
    tokens, scores, types = list(model.pieces), list(model.scores), list(model.types)
    tok_json = load_json(src / "tokenizer.json")
    config = load_json(src / "tokenizer_config.json") or {}
    added = _added_tokens(tok_json)
    extra = load_json(src / "added_tokens.json") or {}
    for content, idx in extra.items():
        if isinstance(idx, int):
            added.setdefault(idx, {"id": idx, "content": content, "special": False})
    for idx in sorted(i for i in added if i >= len(tokens)):
        if idx != len(tokens):
            raise ConvertError("added token ids are not contiguous with the SentencePiece vocabulary")
        entry = added[idx]
        tokens.append(entry["content"])
        scores.append(-1000.0)
        types.append(gguf.TokenType.CONTROL if entry.get("special") else gguf.TokenType.USER_DEFINED)
    for key, entry in (config.get("added_tokens_decoder") or {}).items():
        idx = int(key)
        if idx >= len(tokens) or not isinstance(entry, dict) or "content" not in entry:
            continue
        if entry.get("special"):
            tokens[idx], types[idx] = entry["content"], gguf.TokenType.CONTROL
        else:
            tokens[idx], types[idx] = entry["content"].replace("\u2581", " "), gguf.TokenType.USER_DEFINED
        scores[idx] = -1000.0
    while n_vocab is not None and len(tokens) < n_vocab:
        tokens.append(f"[PAD{len(tokens)}]")
        scores.append(-1000.0)
        types.append(gguf.TokenType.UNUSED)
    special = gguf.SpecialVocab(src, n_vocab=len(tokens))
    for kind, idx in (
        ("bos", model.bos_id),
        ("eos", model.eos_id),
        ("unk", model.unk_id),
        ("pad", model.pad_id),
    ):
        if kind not in special.special_token_ids and 0 <= idx < len(tokens):
            special.special_token_ids[kind] = idx
    return Vocab(
        model="llama",
        pre="default",
        tokens=tokens,
        types=[int(t) for t in types],
        scores=scores,
        special=special,
        flags={"tokenizer.ggml.add_space_prefix": model.add_dummy_prefix},
    )


# -- byte-level BPE (Llama 3, GPT-2 style) ---------------------------------------------------

# tokenizer.json pre-tokenizer regexes -> the llama.cpp pre-tokenizer that implements them.
_PRE_REGEX = {
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+": "llama-bpe",
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+": "qwen2",
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+": "gpt-2",
}  # fmt: skip


def _pre_tokenizer(tok_json: dict[str, Any]) -> str:
    pre = tok_json.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    regexes = [
        s["pattern"].get("Regex")
        for s in steps
        if s.get("type") == "Split" and isinstance(s.get("pattern"), dict)
    ]
    byte_level = [s for s in steps if s.get("type") == "ByteLevel"]
    if not byte_level:
        raise ConvertError("tokenizer.json: only byte-level BPE tokenizers are supported")
    if regexes:
        if len(regexes) == 1 and regexes[0] in _PRE_REGEX:
            return _PRE_REGEX[regexes[0]]
        raise ConvertError(
            "tokenizer.json: unsupported pre-tokenizer regex (llama.cpp has no matching pre-tokenizer)"
        )
    if byte_level[0].get("use_regex", True):
        return "gpt-2"
    raise ConvertError("tokenizer.json: unsupported pre-tokenizer")


def bpe_vocab(src: Path, n_vocab: int | None) -> Vocab:
    tok_json = load_json(src / "tokenizer.json")
    if not isinstance(tok_json, dict):
        raise ConvertError("no tokenizer found (tokenizer.model or tokenizer.json)")
    model = tok_json.get("model") or {}
    if model.get("type") != "BPE" or not isinstance(model.get("vocab"), dict):
        raise ConvertError("tokenizer.json: expected a BPE tokenizer")
    pre = _pre_tokenizer(tok_json)
    added = _added_tokens(tok_json)
    vocab = dict(model["vocab"])
    for idx, entry in added.items():
        vocab.setdefault(entry["content"], idx)
    tokens = _ordered(vocab, "tokenizer.json")
    types = []
    for i in range(len(tokens)):
        if i in added:
            types.append(gguf.TokenType.CONTROL if added[i].get("special") else gguf.TokenType.USER_DEFINED)
        else:
            types.append(gguf.TokenType.NORMAL)
    while n_vocab is not None and len(tokens) < n_vocab:
        tokens.append(f"[PAD{len(tokens)}]")
        types.append(gguf.TokenType.UNUSED)
    special = gguf.SpecialVocab(src, load_merges=True, n_vocab=len(tokens))
    if not special.merges:
        raise ConvertError("tokenizer.json: the BPE tokenizer has no merges")
    merges, special.merges = special.merges, []
    return Vocab(
        model="gpt2", pre=pre, tokens=tokens, types=[int(t) for t in types], merges=merges, special=special
    )


def decoder_vocab(src: Path, n_vocab: int | None) -> Vocab:
    """SentencePiece when there is a tokenizer.model, otherwise byte-level BPE (tokenizer.json)."""
    if (src / "tokenizer.model").is_file():
        return spm_vocab(src, n_vocab)
    return bpe_vocab(src, n_vocab)
