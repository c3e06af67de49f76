"""The one exception type the prompt package raises for a bad or failing template.

The server maps it to HTTP 400 `template error: <message>` (Go template) or to its own
message for jinja. Messages of Go-template errors follow Go's format
(`template: :LINE: ...` for parse errors, `template: :LINE:COL: executing ...` at run time).
"""

from __future__ import annotations


class TemplateError(Exception):
    """A template failed to parse, or failed (or was stopped) while executing."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
