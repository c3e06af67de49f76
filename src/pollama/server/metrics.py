"""GET /metrics in Prometheus text format (Ollama has none).

Three sources:
- HTTP: every request, counted by route template (never the raw path: no unbounded
  labels) and status, including those refused by the security and body-limit layers.
- Generations: tokens evaluated and generated, time to first token, and time per output
  token, recorded once per generation by `observe_generation` (server/streaming.py).
- State read at scrape time: queue depth, loaded models, memory, slots busy/total.

Each app has its own registry, so several apps in one process never share counters.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pollama.engine import Chunk, Done, Failed

if TYPE_CHECKING:
    from pollama.scheduler import Scheduler

disable_created_metrics()  # no `*_created` series: they double the output and nobody reads them

# Latency buckets that fit a CPU box: sub-10 ms per token up to a minute to first token.
_TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_TPOT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
_HTTP_BUCKETS = (0.005, 0.025, 0.1, 0.25, 1, 2.5, 10, 30, 60, 300)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "pollama_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "pollama_http_request_duration_seconds",
            "Time until the response ended (streams included)",
            ["route"],
            buckets=_HTTP_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter(
            "pollama_tokens_evaluated", "Prompt tokens evaluated (not cached)", ["model"], registry=r
        )
        self.output_tokens = Counter("pollama_tokens_generated", "Tokens generated", ["model"], registry=r)
        self.generations = Counter(
            "pollama_generations", "Generations finished, by done reason", ["model", "reason"], registry=r
        )
        self.ttft = Histogram(
            "pollama_time_to_first_token_seconds",
            "From handing the prompt to the runner to the first generated token",
            ["model"],
            buckets=_TTFT_BUCKETS,
            registry=r,
        )
        self.tpot = Histogram(
            "pollama_time_per_output_token_seconds",
            "Mean time per generated token after the first, one observation per generation",
            ["model"],
            buckets=_TPOT_BUCKETS,
            registry=r,
        )
        self.scheduler: Scheduler | None = None
        r.register(_StateCollector(self))

    def observe_generation(
        self,
        model: str,
        *,
        reason: str,
        prompt_eval_count: int,
        eval_count: int,
        eval_duration_ns: int,
        ttft_s: float | None,
    ) -> None:
        self.prompt_tokens.labels(model).inc(prompt_eval_count)
        self.output_tokens.labels(model).inc(eval_count)
        self.generations.labels(model, reason).inc()
        if ttft_s is not None:
            self.ttft.labels(model).observe(ttft_s)
        if eval_count > 1:
            self.tpot.labels(model).observe(eval_duration_ns / 1e9 / eval_count)


class _StateCollector(Collector):
    """Gauges read from the scheduler when Prometheus scrapes, so they are never stale."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        sched = self.metrics.scheduler
        queue = GaugeMetricFamily("pollama_queue_depth", "Requests accepted but not yet decoding")
        loaded = GaugeMetricFamily("pollama_models_loaded", "Models loaded in memory")
        memory = GaugeMetricFamily("pollama_model_memory_bytes", "Weights plus KV cache", labels=["model"])
        busy = GaugeMetricFamily("pollama_slots_busy", "Sequence slots in use", labels=["model"])
        total = GaugeMetricFamily("pollama_slots_total", "Sequence slots (num_parallel)", labels=["model"])
        running = sched.running() if sched is not None else []
        queue.add_metric([], sched.queue_depth() if sched is not None else 0)
        loaded.add_metric([], len(running))
        for entry in running:
            memory.add_metric([entry.name], entry.size)
            busy.add_metric([entry.name], getattr(entry.engine, "busy_slots", 0))
            total.add_metric([entry.name], entry.config.num_parallel)
        yield from (queue, loaded, memory, busy, total)


# The metrics of the app serving the current request (set by HTTPMetricsMiddleware), so the
# streaming code records generations without being handed the app.
current: contextvars.ContextVar[Metrics | None] = contextvars.ContextVar("pollama_metrics", default=None)


def generation_recorder(model: str, submitted_ns: int) -> Callable[[Any], None] | None:
    """A callback for each engine event of one generation; None outside an HTTP request."""
    m = current.get()
    if m is None:
        return None
    first_ns: int | None = None
    streamed = 0  # tokens seen so far
    ended = False

    def record(event: Any) -> None:
        """Called with every event, then with None when the stream closes."""
        nonlocal first_ns, streamed, ended
        if ended:
            return
        if isinstance(event, Chunk):
            streamed += len(event.tokens)
            if first_ns is None:
                first_ns = time.perf_counter_ns()
        elif event is None:  # closed before the end: the client went away
            ended = True
            m.output_tokens.labels(model).inc(streamed)
            m.generations.labels(model, "cancel").inc()
        elif isinstance(event, Done):
            ended = True
            if first_ns is None and event.eval_count:
                first_ns = time.perf_counter_ns()
            m.observe_generation(
                model,
                reason=event.reason,
                prompt_eval_count=event.prompt_eval_count,
                eval_count=event.eval_count,
                eval_duration_ns=event.eval_duration,
                ttft_s=(first_ns - submitted_ns) / 1e9 if first_ns is not None else None,
            )
        elif isinstance(event, Failed):
            ended = True
            m.generations.labels(model, "error").inc()

    return record


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics_endpoint(request: Request) -> Response:
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


_ROUTE_KEY = "pollama.route"


class HTTPMetricsMiddleware:
    """Count every request by route template and status, and time it to the end of its body.

    The route template comes from FastAPI's router (it sets `scope["route"]`), caught by
    RouteCaptureMiddleware just outside the router; requests answered before routing (401,
    403, 413) or matching no route are labelled `unmatched`.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client sees if the app dies before answering
        route: list[str] = []
        scope[_ROUTE_KEY] = route  # shared by reference with the inner middlewares' scope copies
        token = current.set(self.metrics)

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            current.reset(token)
            label = route[0] if route else "unmatched"
            self.metrics.requests.labels(scope["method"], label, str(status)).inc()
            self.metrics.request_seconds.labels(label).observe(time.perf_counter() - start)


class RouteCaptureMiddleware:
    """Innermost: after the router ran, hand its route template to HTTPMetricsMiddleware."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            route, holder = scope.get("route"), scope.get(_ROUTE_KEY)
            if holder is not None and route is not None and hasattr(route, "path"):
                holder.append(route.path)
