"""Helpers for tests that add models to, or load models into, the shared server."""

from __future__ import annotations

from pathlib import Path

TEMPLATES = Path(__file__).parent / "fixtures" / "templates"


def template(name: str) -> str:
    return (TEMPLATES / name).read_text()


def unload_all(base_url: str) -> None:
    """Unload every model a test module loaded into the shared server, so later modules see
    the /api/ps they expect (an empty generate with keep_alive 0 unloads any model)."""
    import httpx

    with httpx.Client(base_url=base_url, timeout=120) as http:
        for m in http.get("/api/ps").json()["models"]:
            http.post("/api/generate", json={"model": m["name"], "keep_alive": 0})
