"""One exception type for every error a client sees, carrying Ollama's status and text.

Raise `APIError(status, message)` anywhere below the server; the server turns it into
`{"error": message}` with that status (or an error line mid-stream). Messages are
copied from Ollama verbatim where Ollama has one (ollama-reference §1.16).
"""

from __future__ import annotations


class APIError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message

    def __repr__(self) -> str:
        return f"APIError({self.status}, {self.message!r})"


def model_required() -> APIError:
    return APIError(400, "model is required")


def invalid_model_name() -> APIError:
    return APIError(400, "invalid model name")


def model_not_found(name: str) -> APIError:
    """The generate/chat/show/delete form: single quotes."""
    return APIError(404, f"model '{name}' not found")


def model_not_found_pull(name: str) -> APIError:
    """The scheduler/embed form: double quotes and a hint."""
    return APIError(404, f'model "{name}" not found, try pulling it first')


def does_not_support(name: str, capability: str, quoted: bool = False) -> APIError:
    """`"<model>" does not support chat` (quoted) or `<fullname> does not support tools`."""
    who = f'"{name}"' if quoted else name
    return APIError(400, f"{who} does not support {capability}")


def server_busy() -> APIError:
    return APIError(503, "server busy, please try again.  maximum pending requests exceeded")
