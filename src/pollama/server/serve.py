"""Run the server: logging set-up and uvicorn, for `pollama serve` and `python -m pollama.server`."""

from __future__ import annotations

from pollama.config import Settings, settings


def serve(cfg: Settings | None = None) -> int:
    import uvicorn

    from pollama.server import logs
    from pollama.server.app import create_app

    cfg = cfg or settings()
    logs.setup(cfg.debug)
    uvicorn.run(
        create_app(cfg),
        host=cfg.host.host,
        port=cfg.host.port,
        log_config=None,  # our logfmt handler on the root logger formats uvicorn's lines too
        log_level="debug" if cfg.debug else "warning",
        access_log=False,  # server/logs.py logs each request, with its id
        timeout_graceful_shutdown=10,
        server_header=False,
    )
    return 0
