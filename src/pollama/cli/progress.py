"""Progress for long operations (pull, push, create, quantize, uploads) and the wait spinner.

The server streams Ollama's progress objects: `{"status"}` for a phase, and
`{"status", "digest", "total", "completed"}` for a transfer. On a terminal they become
rich bars with size, speed and ETA (one per digest) and spinner lines (one per phase);
elsewhere (a pipe, a CI log) they become plain lines, a few per transfer, so logs stay short.
Everything goes to stderr, as ollama does, leaving stdout to the command's real output.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.progress import Progress as RichProgress
from rich.text import Text

from pollama.cli.format import human_bytes


def is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _ForBars(ProgressColumn):
    """Show a column only on transfer rows; phase rows are just a spinner and their text."""

    def __init__(self, inner: ProgressColumn):
        super().__init__()
        self.inner = inner

    def render(self, task: Task) -> Any:
        return self.inner.render(task) if task.fields.get("bar") else Text("")


class _PhaseSpinner(SpinnerColumn):
    def render(self, task: Task) -> Any:
        if task.fields.get("bar"):
            return Text("")
        return Text(" ") if task.finished else super().render(task)


class Progress:
    """Render a stream of progress objects; use as a context manager around the stream."""

    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None):
        self.stream = stream or sys.stderr
        self.tty = is_tty(self.stream) if tty is None else tty
        self._status: str | None = None
        self._phase: TaskID | None = None
        self._bars: dict[str, TaskID] = {}
        self._plain: dict[str, tuple[int, float]] = {}  # key -> (last decile printed, last time)
        self._done: dict[str, int] = {}  # bytes so far of the bars this client drives
        self._rich: RichProgress | None = None
        if self.tty:
            self._rich = RichProgress(
                _PhaseSpinner("dots"),
                TextColumn("{task.description}"),
                _ForBars(TaskProgressColumn()),
                _ForBars(BarColumn(bar_width=None)),
                _ForBars(DownloadColumn()),
                _ForBars(TransferSpeedColumn()),
                _ForBars(TimeRemainingColumn()),
                console=Console(file=self.stream),
                transient=False,
                expand=False,
            )

    def __enter__(self) -> Progress:
        if self._rich:
            self._rich.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._rich:
            self._end_phase()
            self._rich.stop()
            self._rich = None

    # -- phases (spinner lines) ---------------------------------------------------------

    def _end_phase(self) -> None:
        if self._rich and self._phase is not None:
            self._rich.update(self._phase, total=1, completed=1)
            self._phase = None

    def phase(self, status: str) -> None:
        if status == self._status:
            return
        self._status = status
        if self._rich:
            self._end_phase()
            self._phase = self._rich.add_task(status, total=None, bar=False)
        else:
            print(status, file=self.stream, flush=True)

    # -- transfers (bars) ---------------------------------------------------------------

    def bar(self, key: str, description: str, total: int, completed: int = 0) -> None:
        """Create or move the bar `key` (absolute position)."""
        if self._rich:
            task = self._bars.get(key)
            if task is None:
                self._end_phase()
                self._status = None
                task = self._bars[key] = self._rich.add_task(description, total=total or None, bar=True)
            self._rich.update(task, completed=completed, total=total or None)
            return
        decile = 10 if total and completed >= total else (completed * 10 // total if total else 0)
        last, when = self._plain.get(key, (-1, 0.0))
        now = time.monotonic()
        if decile != last and (decile in (0, 10) or now - when >= 1.0):
            self._plain[key] = (decile, now)
            sizes = f"{human_bytes(completed)}/{human_bytes(total)}" if total else human_bytes(completed)
            print(f"{description}: {decile * 10}% ({sizes})", file=self.stream, flush=True)

    def advance(self, key: str, description: str, total: int, step: int) -> None:
        """Move the bar `key` forward by `step` (for transfers this client drives itself)."""
        done = self._done[key] = self._done.get(key, 0) + step
        self.bar(key, description, total, done)

    def update(self, obj: dict[str, Any], verb: str = "pulling") -> None:
        """Show one progress object from the server."""
        status = obj.get("status", "")
        digest = obj.get("digest") or ""
        total = obj.get("total") or 0
        completed = obj.get("completed") or 0
        if digest and total:
            if completed == 0 and digest not in self._bars and digest not in self._plain:
                return  # ollama skips each layer's 0% announcement: it is not a transfer yet
            short = digest.removeprefix("sha256:")[:12]
            self.bar(digest, status or f"{verb} {short}", total, completed)
        elif status:
            self.phase(status)


class Spinner:
    """A transient spinner on stderr while waiting (loading a model, the first token)."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self._status: Any = None
        if is_tty(self.stream):
            self._status = Console(file=self.stream).status("", spinner="dots")

    def __enter__(self) -> Spinner:
        if self._status:
            self._status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._status:
            self._status.stop()
            self._status = None
