"""Human-readable sizes, times and aligned tables, shaped like ollama's CLI output."""

from __future__ import annotations

from datetime import UTC, datetime


def human_bytes(n: int) -> str:
    """Decimal units like Go's format.HumanBytes: `815 MB`, `1.3 GB`."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            value = n / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{n} B"


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None


def _span(seconds: float) -> str:
    seconds = abs(seconds)
    for unit, size in (("year", 31536000), ("month", 2592000), ("week", 604800), ("day", 86400),
                       ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            if count == 1:
                return f"About a{'n' if unit == 'hour' else ''} {unit}"
            return f"{count} {unit}s"
    return "Less than a second" if seconds < 1 else f"{int(seconds)} seconds"


def human_since(text: str) -> str:
    when = _parse_time(text)
    if when is None:
        return ""
    return f"{_span((datetime.now(UTC) - when).total_seconds())} ago"


def human_duration_until(text: str | None) -> str:
    when = _parse_time(text) if text else None
    if when is None:
        return ""
    seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds > 10 * 365 * 86400:
        return "Forever"
    if seconds <= 0:
        return "Stopping..."
    return f"{_span(seconds)} from now"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["    ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in [headers, *rows]]
    return "\n".join(lines)
