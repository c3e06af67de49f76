"""Constrained decoding: Ollama's `format` ("json" or a JSON schema) as a llama.cpp grammar.

The schema is converted to GBNF by llama-cpp-python's port of llama.cpp's converter and
checked by llama.cpp's own parser before any request is queued, so a bad schema is a
client error and never reaches the decode loop.
"""

from __future__ import annotations

import ctypes
import json
from typing import Any

import llama_cpp as L
import numpy as np
from llama_cpp.llama_grammar import json_schema_to_gbnf

from pollama.engine.llama import Model

# One JSON value, an object at the top (as Ollama's "json" format). Whitespace is bounded
# (one newline plus indentation between tokens), so a small model cannot loop on blanks.
JSON_GBNF = r"""
root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws
object ::= "{" ws ( string ":" ws value ("," ws string ":" ws value)* )? "}" ws
array  ::= "[" ws ( value ("," ws value)* )? "]" ws
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) )* "\"" ws
number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws
ws     ::= | " " | "\n" [ \t]{0,20}
"""


class GrammarError(ValueError):
    pass


def grammar_for_format(fmt: str | dict[str, Any] | None) -> str | None:
    """GBNF for Ollama's `format` field: None, "json", or a JSON schema object."""
    if fmt is None or fmt == "":
        return None
    if fmt == "json":
        return JSON_GBNF
    if isinstance(fmt, dict):
        try:
            return json_schema_to_gbnf(json.dumps(fmt))
        except RecursionError as exc:
            raise GrammarError("invalid JSON schema: nested too deeply") from exc
        except Exception as exc:  # the converter asserts/raises on anything it cannot handle
            raise GrammarError(f"invalid JSON schema: {exc}") from exc
    raise GrammarError(f'invalid format: {json.dumps(fmt)}; expected "json" or a valid JSON Schema object')


def grammar_after_prefix(schema: dict[str, Any], prefix: str) -> str:
    """GBNF for the literal `prefix`, then one JSON value matching `schema`: a forced tool
    call written in the model's own call syntax (its tool tag, then the call object)."""
    lines = [
        "tool-call-json ::=" + line[len("root ::=") :] if line.startswith("root ::=") else line
        for line in (grammar_for_format(schema) or "").splitlines()
    ]
    head = f"root ::= {json.dumps(prefix)} tool-call-json" if prefix else "root ::= tool-call-json"
    return "\n".join([head, *lines])


def new_grammar_sampler(model: Model, gbnf: str):
    """A llama.cpp grammar sampler; GrammarError when llama.cpp cannot parse the grammar."""
    sampler = L.llama_sampler_init_grammar(model.vocab, gbnf.encode(), b"root")
    if not sampler:
        raise GrammarError("invalid grammar: llama.cpp could not parse it")
    return sampler


def check_grammar(model: Model, gbnf: str) -> None:
    L.llama_sampler_free(new_grammar_sampler(model, gbnf))


class Candidates:
    """A reusable full-vocabulary llama_token_data_array over a numpy buffer."""

    _dtype = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])

    def __init__(self, n_vocab: int):
        self.data = np.zeros(n_vocab, dtype=self._dtype)
        self.data["id"] = np.arange(n_vocab, dtype=np.int32)
        self.array = L.llama_token_data_array(
            data=self.data.ctypes.data_as(L.llama_token_data_p),
            size=n_vocab,
            selected=-1,
            sorted=False,
        )
        self.pointer = ctypes.pointer(self.array)
        self._one = np.zeros(1, dtype=self._dtype)
        self._one_array = L.llama_token_data_array(
            data=self._one.ctypes.data_as(L.llama_token_data_p), size=1, selected=-1, sorted=False
        )
        self._one_pointer = ctypes.pointer(self._one_array)

    def load(self, logits: np.ndarray, ids: np.ndarray | None = None) -> None:
        """Reset to the whole vocabulary (or to `ids` only) with these logits.

        Samplers may have moved the data pointer and shrunk the size: both are reset.
        """
        if ids is None:
            self.data["id"] = np.arange(len(self.data), dtype=np.int32)
            self.data["logit"] = logits
            size = len(self.data)
        else:
            size = len(ids)
            self.data["id"][:size] = ids
            self.data["logit"][:size] = logits[ids]
        self.data["p"][:size] = 0.0
        self.array.data = self.data.ctypes.data_as(L.llama_token_data_p)
        self.array.size = size
        self.array.selected = -1
        self.array.sorted = False

    def selected(self) -> int:
        return int(self.array.data[self.array.selected].id)

    def allows(self, grammar, token: int) -> bool:
        """Would the grammar accept `token` next? (cheap: a one-candidate array)"""
        self._one["id"] = token
        self._one["logit"] = 0.0
        self._one_array.size = 1
        self._one_array.data = self._one.ctypes.data_as(L.llama_token_data_p)
        L.llama_sampler_apply(grammar, self._one_pointer)
        return bool(np.isfinite(self._one["logit"][0]))
