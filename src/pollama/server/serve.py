"""Run the server: logging set-up and uvicorn, for `pollama serve` and `python -m pollama.server`."""

from __future__ import annotations

import logging

from pollama.config import Settings, settings


def serve(cfg: Settings | None = None) -> int:
    import uvicorn

    from pollama.server.app import create_app

    cfg = cfg or settings()
    level = logging.DEBUG if cfg.debug else logging.INFO
    logging.basicConfig(
        level=level, format="time=%(asctime)s level=%(levelname)s source=%(name)s msg=%(message)s"
    )
    if cfg.debug < 2:  # llama.cpp's own log only at OLLAMA_DEBUG=2
        logging.getLogger("pollama.llama").setLevel(logging.INFO if cfg.debug else logging.WARNING)
    uvicorn.run(
        create_app(cfg),
        host=cfg.host.host,
        port=cfg.host.port,
        log_level="debug" if cfg.debug else "warning",
        access_log=bool(cfg.debug),
        timeout_graceful_shutdown=10,
        server_header=False,
    )
    return 0
