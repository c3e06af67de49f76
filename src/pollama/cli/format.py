"""Human-readable sizes, times, durations and tables, shaped like ollama's CLI output.

These follow Ollama's `format` package and its tablewriter settings closely, because
scripts and eyes used to `ollama list` read the same columns and wording.
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

from wcwidth import wcswidth


def human_bytes(n: int) -> str:
    """Go's format.HumanBytes: decimal units, `815 MB`, `1.3 GB`, `12 GB`."""
    for unit, scale in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if n >= scale:
            value = n / scale
            if value >= 10 or value == int(value):
                return f"{int(value)} {unit}"
            return f"{value:.1f} {unit}"
    return f"{n} B"


def human_number(n: int) -> str:
    """Go's format.HumanNumber: `268.10M`, `8.0B` style parameter counts."""
    for unit, scale in (("T", 10**12), ("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= scale:
            value = n / scale
            if value >= 100:
                return f"{value:.0f}{unit}"
            if value >= 10:
                return f"{value:.1f}{unit}"
            return f"{value:.2f}{unit}"
    return str(n)


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        # Python before 3.11 chokes on nanoseconds; RFC3339Nano may carry 9 digits.
        head, dot, frac = text.partition(".")
        if dot:
            digits = "".join(c for c in frac if c.isdigit())
            text = f"{head}.{digits[:6]}{frac[len(digits) :]}"
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if when.year <= 1:
        return None  # Go's zero time
    return when


def human_duration(seconds: float) -> str:
    """Go's format.humanDuration (from docker/go-units): "About a minute", "3 hours"."""
    secs = int(seconds)
    if secs < 1:
        return "Less than a second"
    if secs == 1:
        return "1 second"
    if secs < 60:
        return f"{secs} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(seconds / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def human_time(text: str | None, zero: str = "Never", now: datetime | None = None) -> str:
    """Go's format.HumanTime: "2 hours ago", "4 minutes from now", "Forever"."""
    when = parse_time(text)
    if when is None:
        return zero
    delta = ((now or datetime.now(UTC)) - when).total_seconds()
    if int(delta / 3600) // 24 // 365 < -20:
        return "Forever"
    if delta < 0:
        return f"{human_duration(-delta)} from now"
    return f"{human_duration(delta)} ago"


def go_duration(ns: int) -> str:
    """Go's time.Duration.String(): `1.234567s`, `12.5ms`, `1m3.2s`, `850µs`."""
    if ns == 0:
        return "0s"
    sign, ns = ("-" if ns < 0 else ""), abs(ns)

    def frac(value: int, unit: int) -> str:
        whole, rest = divmod(value, unit)
        digits = str(rest).rjust(len(str(unit)) - 1, "0").rstrip("0")
        return f"{whole}.{digits}" if digits else str(whole)

    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{frac(ns, 1_000)}µs"
    if ns < 1_000_000_000:
        return f"{sign}{frac(ns, 1_000_000)}ms"
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    out = f"{hours}h" if hours else ""
    if hours or minutes:
        out += f"{minutes}m"
    return f"{sign}{out}{frac(rest, 1_000_000_000)}s"


def width(text: str) -> int:
    w = wcswidth(text)
    return len(text) if w < 0 else w


def _wrap(cell: str, limit: int) -> list[str]:
    # tablewriter wraps a cell wider than its column limit at spaces; one long word stays whole.
    if width(cell) <= limit:
        return [cell]
    return textwrap.wrap(cell, limit, break_long_words=False, break_on_hyphens=False) or [""]


def table(headers: list[str] | None, rows: list[list[str]], *, padding: str = "    ", limit: int = 30) -> str:
    """Borderless, left-aligned columns separated by four spaces, as ollama's tablewriter setup."""
    all_rows = ([headers] if headers else []) + rows
    if not all_rows:
        return ""
    columns = max(len(r) for r in all_rows)
    cells = [[_wrap(str(r[i]) if i < len(r) else "", limit) for i in range(columns)] for r in all_rows]
    widths = [max((width(line) for row in cells for line in row[i]), default=0) for i in range(columns)]
    out: list[str] = []
    for row in cells:
        for k in range(max(len(c) for c in row)):
            parts = []
            for i, lines in enumerate(row):
                text = lines[k] if k < len(lines) else ""
                parts.append(text + " " * (widths[i] - width(text)))
            out.append(padding.join(parts).rstrip())
    return "\n".join(out)
