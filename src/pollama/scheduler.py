"""Which runner serves a request: load, reuse, evict, keep_alive timers, and the queue limit.

Rules (Ollama's, ollama-reference §7.1 and §7.3, with the differences noted in README):
- A runner is keyed by its model file and the options that shape the context (num_ctx,
  num_batch, num_thread, ...). A request for a loaded model with other such options waits
  until that runner is idle, then replaces it.
- At most OLLAMA_MAX_LOADED_MODELS runners (3 by default); the least recently used idle
  one is evicted first. Loads happen one at a time.
- keep_alive: every request sets its runner's keep-alive (last one wins); the timer starts
  when the runner goes idle; 0 unloads as soon as it is idle; negative never expires.
- OLLAMA_MAX_QUEUE bounds every request that is accepted but not yet decoding — waiting
  for a load *or* for a slot of an already loaded model (Ollama only counts the former,
  issue #7758). Beyond it: 503 "server busy".
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pollama.api.errors import APIError, server_busy
from pollama.api.options import Options
from pollama.config import FOREVER, Settings
from pollama.engine import LoadedEngine, RunnerConfig, load_engine

log = logging.getLogger("pollama.scheduler")

DEFAULT_NUM_CTX = 4096  # Ollama's default below 24 GiB of VRAM; there is no VRAM here
AUTO_PARALLEL = 4
HEADROOM_BYTES = 512 * 1024 * 1024


@dataclass
class Loaded:
    name: str  # display name of the model that caused the load
    model: Any  # store.LocalModel
    path: Path
    signature: tuple
    engine: LoadedEngine
    config: RunnerConfig
    size: int
    load_duration_ns: int
    keep_alive: float
    refs: int = 0
    expires_at: datetime | None = None
    timer: asyncio.TimerHandle | None = None
    last_used: float = field(default_factory=time.monotonic)
    unloading: bool = False


@dataclass
class Lease:
    """A request's hold on a loaded runner; release() exactly once when the request ends."""

    scheduler: Scheduler
    loaded: Loaded
    load_duration_ns: int
    released: bool = False

    @property
    def engine(self) -> LoadedEngine:
        return self.loaded.engine

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.scheduler._release(self.loaded)


def _mem_available() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 1 << 62


class Scheduler:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._loaded: dict[Path, Loaded] = {}
        self._load_lock = asyncio.Lock()
        self._changed = asyncio.Condition()
        self._waiting = 0  # requests waiting for a load / eviction
        self._closing = False

    # -- public -------------------------------------------------------------------------

    def queue_depth(self) -> int:
        """Requests accepted but not yet decoding: waiting for a load or for a slot."""
        return self._waiting + sum(entry.engine.waiting for entry in self._loaded.values())

    def check_queue(self) -> None:
        """Raise 503 when the queue of not-yet-running requests is full."""
        if self.queue_depth() >= self.settings.max_queue:
            raise server_busy()

    async def acquire(self, model: Any, options: Options, keep_alive: float | None) -> Lease:
        """Get a runner for `model` (a store LocalModel), loading or replacing as needed."""
        if self._closing:
            raise APIError(503, "server is shutting down")
        if model.model_path is None:
            raise APIError(400, f"{model.name.display} has no model weights")
        self.check_queue()
        keep_alive = self.settings.keep_alive if keep_alive is None else keep_alive
        signature = self._signature(model, options)
        self._waiting += 1
        try:
            while True:
                if self._closing:
                    raise APIError(503, "server is shutting down")
                entry = self._loaded.get(model.model_path)
                if entry is not None and not entry.unloading and entry.signature == signature:
                    return self._lease(entry, keep_alive, 0)
                async with self._load_lock:
                    entry = self._loaded.get(model.model_path)
                    if entry is not None and not entry.unloading and entry.signature == signature:
                        return self._lease(entry, keep_alive, 0)
                    if entry is not None and entry.refs == 0:
                        await self._unload(entry)
                        entry = None
                    if entry is None and await self._make_room():
                        start = time.perf_counter_ns()
                        entry = await self._load(model, options, signature, keep_alive)
                        return self._lease(entry, keep_alive, time.perf_counter_ns() - start)
                # Wait for a runner to go idle or unload; the timeout covers a wake-up that
                # happened between our checks above and this wait.
                async with self._changed:
                    try:
                        await asyncio.wait_for(self._changed.wait(), timeout=0.5)
                    except TimeoutError:
                        pass
        finally:
            self._waiting -= 1

    async def unload(self, model: Any) -> None:
        """keep_alive 0 with no prompt: unload now if idle, otherwise as soon as it is idle."""
        entry = self._loaded.get(model.model_path) if model.model_path else None
        if entry is None:
            return
        entry.keep_alive = 0
        if entry.refs == 0:
            await self._unload(entry)

    def running(self) -> list[Loaded]:
        """Loaded runners, latest expiry first (as /api/ps sorts them)."""
        far = datetime.max.replace(tzinfo=UTC)
        return sorted(self._loaded.values(), key=lambda e: e.expires_at or far, reverse=True)

    async def begin_shutdown(self) -> None:
        """Refuse new work; requests waiting for a runner wake up and get a 503."""
        self._closing = True
        await self._notify()

    async def shutdown(self) -> None:
        self._closing = True
        for entry in list(self._loaded.values()):
            await self._unload(entry)

    # -- internals ----------------------------------------------------------------------

    def _signature(self, model: Any, options: Options) -> tuple:
        return (
            self._num_ctx(options),
            options.num_batch,
            options.num_thread or self.settings.num_threads,
            options.num_gpu,
            options.use_mmap,
            tuple(model.adapter_paths),
            tuple(model.projector_paths),
        )

    def _num_ctx(self, options: Options) -> int:
        return options.num_ctx or self.settings.context_length or DEFAULT_NUM_CTX

    def _lease(self, entry: Loaded, keep_alive: float, load_ns: int) -> Lease:
        entry.refs += 1
        entry.keep_alive = keep_alive
        entry.last_used = time.monotonic()
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None
        entry.expires_at = _expiry(keep_alive)
        return Lease(self, entry, load_ns)

    def _release(self, entry: Loaded) -> None:
        entry.refs -= 1
        entry.last_used = time.monotonic()
        if entry.refs > 0:
            return
        entry.expires_at = _expiry(entry.keep_alive)
        if entry.keep_alive == 0:
            asyncio.get_running_loop().create_task(self._unload(entry))
        elif math.isfinite(entry.keep_alive):
            loop = asyncio.get_running_loop()
            entry.timer = loop.call_later(entry.keep_alive, lambda: loop.create_task(self._expire(entry)))
        asyncio.get_running_loop().create_task(self._notify())

    async def _expire(self, entry: Loaded) -> None:
        if entry.refs == 0 and self._loaded.get(entry.path) is entry:
            log.info("keep_alive expired, unloading %s", entry.name)
            await self._unload(entry)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _make_room(self) -> bool:
        """Evict idle runners until a new one may load; False if every runner is busy."""
        limit = self.settings.max_loaded_models or 3
        while len(self._loaded) >= limit:
            idle = [e for e in self._loaded.values() if e.refs == 0]
            if not idle:
                return False
            await self._unload(min(idle, key=lambda e: e.last_used))
        return True

    async def _load(self, model: Any, options: Options, signature: tuple, keep_alive: float) -> Loaded:
        num_ctx, num_batch, threads = signature[0], signature[1], signature[2]
        path = model.model_path

        def build() -> tuple[LoadedEngine, RunnerConfig]:
            return load_engine(
                path,
                num_ctx=num_ctx,
                num_batch=num_batch,
                num_threads=threads,
                num_parallel=self.settings.num_parallel,
                auto_parallel=AUTO_PARALLEL,
                mem_available=_mem_available() - HEADROOM_BYTES,
                num_gpu=options.num_gpu,
                use_mmap=options.use_mmap is not False,
                flash_attention=self.settings.flash_attention,
                kv_cache_type=self.settings.kv_cache_type,
                projector_paths=list(model.projector_paths),
                adapter_paths=list(model.adapter_paths),
                shards=list(model.model_paths),
            )

        log.info(
            "loading %s (num_ctx=%d, num_batch=%d, threads=%d)",
            model.name.display,
            num_ctx,
            num_batch,
            threads,
        )
        start = time.perf_counter_ns()
        try:
            engine, config = await asyncio.wait_for(
                asyncio.to_thread(build), timeout=self.settings.load_timeout
            )
        except APIError:
            raise
        except TimeoutError as exc:
            raise APIError(500, "timed out waiting for the model to load") from exc
        except Exception as exc:
            log.warning("failed to load %s: %s", model.name.display, exc)
            raise APIError(500, f"failed to load model {model.name.display}: {exc}") from exc
        entry = Loaded(
            name=model.name.display,
            model=model,
            path=path,
            signature=signature,
            engine=engine,
            config=config,
            size=engine.memory_bytes,
            load_duration_ns=time.perf_counter_ns() - start,
            keep_alive=keep_alive,
        )
        self._loaded[path] = entry
        log.info(
            "loaded %s in %.2fs (parallel=%d)", entry.name, entry.load_duration_ns / 1e9, config.num_parallel
        )
        return entry

    async def _unload(self, entry: Loaded) -> None:
        if entry.unloading:
            return
        entry.unloading = True
        if entry.timer is not None:
            entry.timer.cancel()
        if self._loaded.get(entry.path) is entry:
            del self._loaded[entry.path]
        await asyncio.to_thread(entry.engine.close)
        log.info("unloaded %s", entry.name)
        await self._notify()


def _expiry(keep_alive: float) -> datetime:
    now = datetime.now(UTC)
    if keep_alive == FOREVER or not math.isfinite(keep_alive):
        return now + timedelta(days=365 * 100)  # "forever", as Ollama shows it: far in the future
    return now + timedelta(seconds=keep_alive)
