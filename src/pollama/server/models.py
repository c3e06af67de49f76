"""Model-management routes: tags (list), and — with the create work — show, copy, delete, blobs."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pollama.server.state import app_state
from pollama.server.streaming import json_response
from pollama.store import LocalModel

router = APIRouter()


def rfc3339nano(dt: datetime) -> str:
    """Go's time.RFC3339Nano: local offset (or Z), fraction without trailing zeros."""
    text = dt.isoformat(timespec="microseconds")
    base, _, rest = text.partition(".")
    frac, offset = rest[:6].rstrip("0"), rest[6:]
    if offset in ("+00:00", ""):
        offset = "Z"
    return f"{base}.{frac}{offset}" if frac else f"{base}{offset}"


def list_entry(m: LocalModel) -> dict[str, Any]:
    """One /api/tags item (Ollama's api.ListModelResponse)."""
    entry: dict[str, Any] = {
        "name": m.name.display,
        "model": m.name.display,
        "modified_at": rfc3339nano(m.modified_at),
        "size": m.size,
        "digest": m.digest,
        "details": m.details(with_parent=False),
    }
    caps = m.capabilities
    if caps:
        entry["capabilities"] = caps
    return entry


@router.api_route("/api/tags", methods=["GET", "HEAD"])
async def tags(request: Request) -> Response:
    store = app_state(request).store
    models = await asyncio.to_thread(lambda: [list_entry(m) for m in store.list()])
    return json_response({"models": models})
