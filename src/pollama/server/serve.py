"""Run the server: logging set-up and uvicorn, for `pollama serve` and `python -m pollama.server`.

Graceful shutdown on SIGTERM or SIGINT (a second SIGINT forces it):
1. stop accepting connections;
2. refuse queued requests (503 "server is shutting down") and end open generations: a
   stream gets a final `{"error": "server is shutting down"}` line, a request still
   waiting for its first token a 503;
3. wait for the responses to finish (at most GRACE_SECONDS), then unload every model;
4. exit with status 0.
"""

from __future__ import annotations

import logging
import signal
import socket
from types import FrameType

from pollama.config import Settings, settings

GRACE_SECONDS = 10

log = logging.getLogger("pollama.server")


def serve(cfg: Settings | None = None) -> int:
    import uvicorn

    from pollama.server import logs, streaming
    from pollama.server.app import create_app
    from pollama.store.registry import ensure_keypair

    cfg = cfg or settings()
    logs.setup(cfg.debug)
    ensure_keypair(cfg.home)  # the registry auth key, created on first start as `ollama serve` does
    app = create_app(cfg)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # uvicorn re-raises the signal after its shutdown, so the process would die of
            # it (status -15); a finished graceful shutdown exits 0 instead.
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True
            else:
                log.info("received %s, shutting down", signal.Signals(sig).name)
                self.should_exit = True

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            for server in self.servers:
                server.close()
            state = getattr(app.state, "pollama", None)
            if state is not None:
                await state.scheduler.begin_shutdown()
            ended = streaming.abort_streams()
            if ended:
                log.info("ended %d open generation(s)", ended)
            await super().shutdown(sockets)

    config = uvicorn.Config(
        app,
        host=cfg.host.host,
        port=cfg.host.port,
        log_config=None,  # our logfmt handler on the root logger formats uvicorn's lines too
        log_level="debug" if cfg.debug else "warning",
        access_log=False,  # server/logs.py logs each request, with its id
        timeout_graceful_shutdown=GRACE_SECONDS,
        server_header=False,
    )
    server = Server(config)
    server.run()
    if not server.started:
        return 1  # start-up failed (address in use, store unreadable): uvicorn logged why
    log.info("shut down")
    return 0
