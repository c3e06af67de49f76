"""Prompt construction and output parsing.

- `gotemplate`: Go text/template interpreter (model TEMPLATE layers).
- `render`: Ollama's rendering semantics (messages / legacy / suffix modes, truncation).
- `jinja`: sandboxed rendering of a GGUF `tokenizer.chat_template`.
- `capabilities`: tools / insert / thinking support and the tags a template implies.
- `thinking`, `toolcalls`: incremental parsers for generated text.
"""

from .errors import TemplateError

__all__ = ["TemplateError"]
