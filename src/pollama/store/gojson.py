"""JSON bytes as Go's encoding/json writes them, so manifests and config blobs pollama writes
are byte-identical to Ollama's for the same content (and so have the same digests).

Go: compact, keys in the order given (structs) or sorted (maps, done by the caller),
non-ASCII kept as UTF-8, and `<`, `>`, `&`, U+2028, U+2029 escaped as \\u003c etc.
`json.Encoder.Encode` adds a trailing newline; `json.Marshal` does not.
"""

from __future__ import annotations

import json
from typing import Any

_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def dumps(obj: Any, *, newline: bool = False, sort_keys: bool = False) -> bytes:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)
    if any(c in text for c in _GO_ESCAPES):
        text = "".join(_GO_ESCAPES.get(c, c) for c in text)
    if newline:
        text += "\n"
    return text.encode()
