"""Request shapes of /api/pull and /api/push (ollama-reference §1.13-1.14)."""

from __future__ import annotations

from pollama.api.inference import Wire


class PullRequest(Wire):
    model: str = ""
    name: str = ""  # deprecated spelling of model
    insecure: bool = False  # allow (and use) plain http
    stream: bool = True
    username: str = ""  # accepted and ignored, as Ollama does
    password: str = ""


class PushRequest(PullRequest):
    pass
