"""The load driver: N concurrent streaming clients, each sending requests one after another.

Every request is greedy with a fixed output length. A client records when it sent the
request, when the first non-empty piece of text arrived (TTFT), when the last one arrived,
how many tokens the server says it generated and why it stopped. The driver runs in its
own process (this one), so its cost lands on the same 2 cores for every contender alike.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import orjson

from contenders import Contender


@dataclass
class Sample:
    ok: bool
    error: str = ""
    sent: float = 0.0
    first: float = 0.0  # first non-empty text
    last: float = 0.0  # last non-empty text
    end: float = 0.0  # response complete
    tokens: int = 0
    prompt_tokens: int = 0
    reason: str = ""  # "length" when it ran to the token limit
    text: str = ""

    @property
    def ttft(self) -> float:
        return self.first - self.sent

    @property
    def decode_rate(self) -> float | None:
        """Tokens per second of this stream after its first token."""
        span = self.last - self.first
        return (self.tokens - 1) / span if self.tokens > 1 and span > 0 else None


async def _lines(response: httpx.Response) -> AsyncIterator[bytes]:
    buf = b""
    async for data in response.aiter_raw():
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                yield line
    if buf.strip():
        yield buf


def _ollama_options(n_predict: int) -> dict[str, Any]:
    return {"temperature": 0, "num_predict": n_predict, "seed": 1, "repeat_penalty": 1.0}


def _openai_sampling(n_predict: int) -> dict[str, Any]:
    return {"max_tokens": n_predict, "temperature": 0, "seed": 1, "repeat_penalty": 1.0}


async def _stream(client: httpx.AsyncClient, c: Contender, path: str, body: dict[str, Any]) -> Sample:
    """Send one streaming request and time its pieces; works for NDJSON and SSE bodies."""
    s = Sample(ok=False, sent=time.perf_counter())
    pieces = 0
    try:
        async with client.stream("POST", c.server.base_url + path, json=body) as r:
            if r.status_code != 200:
                await r.aread()
                s.error = f"HTTP {r.status_code}: {r.text[:200]}"
                s.end = time.perf_counter()
                return s
            async for line in _lines(r):
                if c.api == "openai":
                    if not line.startswith(b"data:"):
                        continue
                    line = line[5:].strip()
                    if line == b"[DONE]":
                        break
                obj = orjson.loads(line)
                now = time.perf_counter()
                if "error" in obj:
                    s.error = str(obj["error"])[:200]
                    break
                text, done = _parse(c.api, obj, s)
                if text:
                    s.text += text
                    pieces += 1
                    if not s.first:
                        s.first = now
                    s.last = now
                if done and c.api == "ollama":
                    break
    except (httpx.HTTPError, ValueError) as exc:
        s.error = f"{type(exc).__name__}: {exc}"[:200]
    s.end = time.perf_counter()
    if not s.tokens:  # no usage reported: one streamed piece per token
        s.tokens = pieces
    s.ok = not s.error and s.first > 0
    if not s.first:
        s.first = s.last = s.end
    return s


def _parse(api: str, obj: dict[str, Any], s: Sample) -> tuple[str, bool]:
    """(text of this piece, whether it is the final object); fills token counts and reason."""
    if api == "ollama":
        text = obj.get("response") or obj.get("message", {}).get("content") or ""
        if obj.get("done"):
            s.tokens = obj.get("eval_count", 0)
            s.prompt_tokens = obj.get("prompt_eval_count", 0)
            s.reason = obj.get("done_reason", "")
            return text, True
        return text, False
    usage = obj.get("usage")
    if usage:
        s.tokens = usage.get("completion_tokens", 0) or s.tokens
        s.prompt_tokens = usage.get("prompt_tokens", 0) or s.prompt_tokens
    text = ""
    for choice in obj.get("choices") or ():
        text += choice.get("text") or (choice.get("delta") or {}).get("content") or ""
        if choice.get("finish_reason"):
            s.reason = choice["finish_reason"]
    return text, False


async def complete(client: httpx.AsyncClient, c: Contender, prompt: str, n_predict: int) -> Sample:
    """A raw text completion (no chat template), streamed."""
    if c.api == "ollama":
        body = {
            "model": c.model,
            "prompt": prompt,
            "raw": True,
            "stream": True,
            "options": _ollama_options(n_predict),
        }
        return await _stream(client, c, "/api/generate", body)
    body = {
        "model": c.model,
        "prompt": prompt,
        "stream": True,
        "stream_options": {"include_usage": True},
        **_openai_sampling(n_predict),
    }
    return await _stream(client, c, "/v1/completions", body)


async def chat(client: httpx.AsyncClient, c: Contender, messages: list[dict], n_predict: int) -> Sample:
    if c.api == "ollama":
        body = {"model": c.model, "messages": messages, "stream": True, "options": _ollama_options(n_predict)}
        return await _stream(client, c, "/api/chat", body)
    body = {
        "model": c.model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
        **_openai_sampling(n_predict),
    }
    return await _stream(client, c, "/v1/chat/completions", body)


async def chat_text(client: httpx.AsyncClient, c: Contender, messages: list[dict], n_predict: int) -> str:
    """A non-timed chat turn whose reply text is needed (to build the next turn's history)."""
    if c.api == "ollama":
        body = {
            "model": c.model,
            "messages": messages,
            "stream": False,
            "options": _ollama_options(n_predict),
        }
        r = await client.post(c.server.base_url + "/api/chat", json=body)
        r.raise_for_status()
        return r.json()["message"]["content"]
    body = {"model": c.model, "messages": messages, "stream": False, **_openai_sampling(n_predict)}
    r = await client.post(c.server.base_url + "/v1/chat/completions", json=body)
    r.raise_for_status()
    return r.json()["choices"][0]["message"]["content"]


@dataclass
class LoadPoint:
    contender: str
    clients: int
    n_predict: int
    wall: float
    samples: list[Sample] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.samples if s.ok)

    def summary(self) -> dict[str, Any]:
        ok = [s for s in self.samples if s.ok]
        ttfts = sorted(s.ttft for s in ok)
        rates = [r for s in ok if (r := s.decode_rate) is not None]
        return {
            "contender": self.contender,
            "clients": self.clients,
            "n_predict": self.n_predict,
            "requests": len(self.samples),
            "failed": len(self.samples) - len(ok),
            "short": sum(1 for s in ok if s.tokens < self.n_predict),
            "tokens": self.tokens,
            "wall_s": self.wall,
            "aggregate_tps": self.tokens / self.wall if self.wall > 0 else 0.0,
            "stream_tps_p50": statistics.median(rates) if rates else 0.0,
            "ttft_p50_ms": 1000 * percentile(ttfts, 50),
            "ttft_p95_ms": 1000 * percentile(ttfts, 95),
            "errors": sorted({s.error for s in self.samples if s.error})[:3],
        }

    def raw(self) -> dict[str, Any]:
        return {**self.summary(), "samples": [asdict(s) for s in self.samples]}


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile of sorted values (0 for none)."""
    if not values:
        return 0.0
    k = (len(values) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


async def run_load(
    c: Contender, clients: int, requests_each: int, n_predict: int, prompts: list[str], tag: int
) -> LoadPoint:
    """`clients` concurrent streams, each sending `requests_each` requests back to back.

    Request k of client i gets a distinct header line, so no two requests in the whole run
    share more than a few prompt tokens (no contender profits from a cached prompt).
    """
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    async with httpx.AsyncClient(timeout=httpx.Timeout(900.0), limits=limits) as client:

        async def one_client(i: int) -> list[Sample]:
            out = []
            for k in range(requests_each):
                prompt = f"Request {tag}-{i}-{k}.\n{prompts[(i + k) % len(prompts)]}"
                out.append(await complete(client, c, prompt, n_predict))
            return out

        start = time.perf_counter()
        results = await asyncio.gather(*(one_client(i) for i in range(clients)))
        wall = time.perf_counter() - start
    return LoadPoint(c.name, clients, n_predict, wall, [s for r in results for s in r])
