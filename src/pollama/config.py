"""Every setting, read once from the environment with Ollama's names and defaults.

Ollama's conventions are kept: values are trimmed of spaces and surrounding quotes, a
boolean that does not parse counts as true, and OLLAMA_KEEP_ALIVE accepts a bare number
of seconds as well as a Go duration. pollama's own additions use the POLLAMA_ prefix.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

DEFAULT_PORT = 11434
FOREVER = math.inf  # keep_alive for "never unload"

_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class DurationError(ValueError):
    pass


def parse_go_duration(text: str) -> float:
    """Parse a Go duration string ("5m", "1h30m", "-1m", "0", "1.5s") into seconds.

    The error messages are Go's own (`time: missing unit in duration "3600"`), because
    Ollama passes them through to clients verbatim.
    """
    original = text
    sign = 1.0
    if text[:1] in ("+", "-"):  # ("" in "+-" would be True)
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return 0.0
    if not text:
        raise DurationError(f'time: invalid duration "{original}"')
    total, pos = 0.0, 0
    while pos < len(text):
        m = _DURATION_PART.match(text, pos)
        if not m:
            if re.fullmatch(r"[0-9]*\.?[0-9]+", text[pos:]):
                raise DurationError(f'time: missing unit in duration "{original}"')
            raise DurationError(f'time: invalid duration "{original}"')
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    return sign * total


def keep_alive_seconds(value: float | int | str | None, default: float) -> float:
    """Ollama's keep_alive: number = seconds, string = Go duration, negative = forever."""
    if value is None:
        return default
    if isinstance(value, bool):
        raise DurationError("keep_alive must be a number or a duration string")
    seconds = float(value) if isinstance(value, int | float) else parse_go_duration(value)
    if math.isnan(seconds):
        raise DurationError("keep_alive must be a number or a duration string")
    return FOREVER if seconds < 0 else seconds


def _var(name: str) -> str:
    return os.environ.get(name, "").strip().strip("\"'")


def _bool(name: str) -> bool:
    raw = _var(name)
    if not raw:
        return False
    # Ollama: anything that is set and does not parse as false counts as true
    return raw.lower() not in ("0", "false", "f", "no", "off")


def _int(name: str, default: int) -> int:
    raw = _var(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        return default


@dataclass(frozen=True)
class HostAddress:
    scheme: str
    host: str
    port: int
    path: str = ""

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.path}"

    @property
    def client_url(self) -> str:
        """Where a client on this machine reaches the server (0.0.0.0 means loopback for it)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        return HostAddress(self.scheme, host, self.port, self.path).url


def parse_host(raw: str) -> HostAddress:
    """OLLAMA_HOST: `[scheme://]host[:port][/path]`; port 11434 unless a scheme implies 80/443."""
    raw = raw.strip().strip("\"'")
    scheme, default_port = "http", DEFAULT_PORT
    if "://" in raw:
        scheme, raw = raw.split("://", 1)
        default_port = {"http": 80, "https": 443}.get(scheme, DEFAULT_PORT)
    path = ""
    if "/" in raw:
        raw, rest = raw.split("/", 1)
        path = "/" + rest.rstrip("/") if rest.strip("/") else ""
    host, port = raw, default_port
    if raw.startswith("["):  # [::1]:port
        end = raw.find("]")
        host, tail = raw[1:end], raw[end + 1 :]
        if tail.startswith(":") and tail[1:].isdigit():
            port = int(tail[1:])
    elif raw.count(":") == 1:
        host, p = raw.split(":")
        if p.isdigit():
            port = int(p)
    if not host:
        host = "127.0.0.1"
    return HostAddress(scheme, host, port, path)


@dataclass(frozen=True)
class Settings:
    host: HostAddress
    models: Path
    keep_alive: float  # seconds; FOREVER for never
    num_parallel: int  # 0 = automatic (see scheduler)
    max_loaded_models: int  # 0 = automatic (3 on CPU, as Ollama)
    max_queue: int
    origins: tuple[str, ...]
    context_length: int  # 0 = automatic
    flash_attention: bool | None
    kv_cache_type: str
    debug: int  # 0 info, 1 debug, 2 trace
    load_timeout: float
    noprune: bool
    nohistory: bool
    num_threads: int  # pollama: threads for llama.cpp (Ollama's num_thread option overrides per model)
    api_keys: tuple[str, ...] = field(default=(), repr=False)  # pollama: optional bearer keys
    max_body_bytes: int = 64 * 1024 * 1024  # pollama: JSON body limit (blob uploads are streamed)
    registry_stall_timeout: float = 30.0  # pollama: a pull's part with no data this long is retried

    @property
    def home(self) -> Path:
        """~/.ollama: keys, history and other per-user state."""
        return Path.home() / ".ollama"


def _debug_level() -> int:
    raw = _var("OLLAMA_DEBUG").lower()
    if not raw or raw in ("0", "false", "f", "no", "off"):
        return 0
    if raw.isdigit():
        return int(raw)
    return 1


def _api_keys() -> tuple[str, ...]:
    keys = [k.strip() for k in _var("POLLAMA_API_KEYS").split(",") if k.strip()]
    keys_file = _var("POLLAMA_API_KEYS_FILE")
    if keys_file:
        for line in Path(keys_file).expanduser().read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                keys.append(line)
    return tuple(keys)


def _flash_attention() -> bool | None:
    raw = _var("OLLAMA_FLASH_ATTENTION")
    return None if not raw else _bool("OLLAMA_FLASH_ATTENTION")


def _keep_alive_default() -> float:
    raw = _var("OLLAMA_KEEP_ALIVE")
    if not raw:
        return 300.0
    try:
        seconds = float(raw)  # the env var (unlike the API) accepts a bare number of seconds
    except ValueError:
        try:
            seconds = parse_go_duration(raw)
        except DurationError:
            return 300.0
    return FOREVER if seconds < 0 else seconds


def _load_timeout() -> float:
    seconds = _duration("OLLAMA_LOAD_TIMEOUT", 300.0)
    return FOREVER if seconds <= 0 else seconds


def _duration(name: str, default: float) -> float:
    """Seconds (`2.5`) or a Go duration (`1m30s`); unset or unparseable is the default."""
    raw = _var(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        try:
            return parse_go_duration(raw)
        except DurationError:
            return default


def _seconds(name: str, default: float) -> float:
    """A positive duration; anything else is the default."""
    seconds = _duration(name, default)
    return seconds if seconds > 0 else default


def from_env() -> Settings:
    models = _var("OLLAMA_MODELS")
    return Settings(
        host=parse_host(_var("OLLAMA_HOST") or f"127.0.0.1:{DEFAULT_PORT}"),
        models=Path(models).expanduser() if models else Path.home() / ".ollama" / "models",
        keep_alive=_keep_alive_default(),
        num_parallel=max(0, _int("OLLAMA_NUM_PARALLEL", 0)),
        max_loaded_models=max(0, _int("OLLAMA_MAX_LOADED_MODELS", 0)),
        max_queue=max(1, _int("OLLAMA_MAX_QUEUE", 512)),
        origins=tuple(o.strip() for o in _var("OLLAMA_ORIGINS").split(",") if o.strip()),
        context_length=max(0, _int("OLLAMA_CONTEXT_LENGTH", 0)),
        flash_attention=_flash_attention(),
        kv_cache_type=_var("OLLAMA_KV_CACHE_TYPE").lower(),
        debug=_debug_level(),
        load_timeout=_load_timeout(),
        noprune=_bool("OLLAMA_NOPRUNE"),
        nohistory=_bool("OLLAMA_NOHISTORY"),
        num_threads=max(0, _int("POLLAMA_NUM_THREADS", 0)) or (os.cpu_count() or 1),
        api_keys=_api_keys(),
        max_body_bytes=max(1024, _int("POLLAMA_MAX_BODY_BYTES", 64 * 1024 * 1024)),
        registry_stall_timeout=_seconds("POLLAMA_REGISTRY_STALL_TIMEOUT", 30.0),
    )


@cache
def settings() -> Settings:
    """The process-wide settings, read once."""
    return from_env()
