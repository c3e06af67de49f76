"""The FastAPI application: routers, error handling, and start-up/shut-down of store and scheduler."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from pollama import __version__
from pollama.bundled import register_bundled
from pollama.config import Settings
from pollama.scheduler import Scheduler
from pollama.server import embed, errors, metrics, models, native, openai, registry
from pollama.server.jsonbody import JSONBodyMiddleware
from pollama.server.limits import BodyLimitMiddleware
from pollama.server.logs import RequestLogMiddleware
from pollama.server.security import SecurityMiddleware
from pollama.server.state import AppState
from pollama.store import Store

log = logging.getLogger("pollama.server")


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store(settings.models)
        store.ensure_layout()
        register_bundled(store)
        scheduler = Scheduler(settings)
        app.state.metrics.scheduler = scheduler
        app.state.pollama = AppState(settings=settings, store=store, scheduler=scheduler)
        log.info("pollama %s serving %s with models in %s", __version__, settings.host.url, settings.models)
        try:
            yield
        finally:
            await scheduler.shutdown()

    app = FastAPI(title="pollama", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.metrics = metrics.Metrics()
    errors.install(app)
    # Outermost last: every request gets an id and is counted; security decides who may talk
    # at all; then bodies are bounded and checked.
    app.add_middleware(metrics.RouteCaptureMiddleware)
    app.add_middleware(JSONBodyMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityMiddleware, settings=settings)
    app.add_middleware(metrics.HTTPMetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(RequestLogMiddleware)
    app.include_router(native.router)
    app.include_router(models.router)
    app.include_router(embed.router)
    app.include_router(metrics.router)
    app.include_router(registry.router)
    app.include_router(openai.router)
    return app
