"""Running the server under uvicorn, and stopping it gracefully.

On SIGTERM (or the first Ctrl-C) the server *drains*:

* every new request, ``/health`` included (a load balancer takes the node out of rotation), is
  answered ``503 service_unavailable`` with ``Retry-After: 5`` and ``Connection: close``; a client
  retries it on another node or after the restart;
* the requests under way (part uploads, imports, commits, queries, exports) run to their end, up to
  ``shutdown_grace_seconds``; their responses close their connections;
* connector runs under way are cancelled at once: each ends ERROR with code ``shutdown`` and is
  queued to run again (``services/connector_runs.py``); the scheduler and background maintenance stop.

Once nothing is in flight, or the grace period is over, uvicorn closes the listening socket and the
connections, the app's lifespan stops the background threads (buffered one-row appends stay
durably buffered), and the process exits 0. Work still running after the grace period is abandoned
as in a crash, which the write paths are built for: a commit is one Iceberg transaction with an
exactly-once commit key, so a restart finds it landed or not, and a commit left COMMITTING resumes.
A second signal stops at once.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

import uvicorn
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from datagrove.api.errors import error_response

log = logging.getLogger("datagrove.server")

RETRY_AFTER_SECONDS = 5
# Once the grace period is over: how long uvicorn waits for connections before cancelling them.
CLOSE_CONNECTIONS_SECONDS = 1


class Drain:
    """ASGI middleware counting the requests in flight; once ``draining``, it refuses new ones."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.draining = False
        self.in_flight = 0
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.draining:
            self.refused += 1
            response = error_response(
                Request(scope),
                503,
                "service_unavailable",
                "the server is shutting down; send the request again in a few seconds",
            )
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            # A request that started before the drain ends its connection with its response.
            if message["type"] == "http.response.start" and self.draining:
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        self.in_flight += 1
        try:
            await self.app(scope, receive, send_closing)
        finally:
            self.in_flight -= 1


class GracefulServer(uvicorn.Server):
    """uvicorn's server with a drain in front of its own shutdown (see the module docstring)."""

    def __init__(
        self, config: uvicorn.Config, drain: Drain, *, grace_seconds: float, on_drain: Callable[[], None]
    ) -> None:
        super().__init__(config)
        self.drain = drain
        self.grace_seconds = grace_seconds
        self.on_drain = on_drain
        self.drain_started: float | None = None
        self.abandoned = 0
        self.stopping_background: threading.Thread | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not uvicorn's own: it records the signal and raises it again once served, so the process
        # would end by the signal rather than exit 0.
        if self.drain_started is not None:
            log.warning("second signal: stopping now", extra={"fields": {"in_flight": self.drain.in_flight}})
            self.abandoned = self.drain.in_flight
            self.should_exit = self.force_exit = True
            return
        self.drain_started = time.monotonic()
        self.drain.draining = True
        log.info(
            "draining: new requests are refused, those under way may finish",
            extra={
                "fields": {
                    "signal": signal.Signals(sig).name,
                    "in_flight": self.drain.in_flight,
                    "grace_seconds": self.grace_seconds,
                }
            },
        )
        self.stopping_background = threading.Thread(
            target=self._stop_background_work, name="drain", daemon=True
        )
        self.stopping_background.start()

    def _stop_background_work(self) -> None:
        try:
            self.on_drain()
        except Exception:
            log.exception("stopping the background work failed")

    async def on_tick(self, counter: int) -> bool:
        if self.drain_started is not None and not self.should_exit:
            over = time.monotonic() - self.drain_started >= self.grace_seconds
            # Background work (a cancelled connector run recording its ERROR) ends within the grace too.
            background_done = self.stopping_background is None or not self.stopping_background.is_alive()
            if (self.drain.in_flight == 0 and background_done) or over:
                if self.drain.in_flight:
                    self.abandoned = self.drain.in_flight
                    log.warning(
                        "grace period over: abandoning the requests still under way",
                        extra={"fields": {"in_flight": self.drain.in_flight}},
                    )
                    self.config.timeout_graceful_shutdown = CLOSE_CONNECTIONS_SECONDS
                log.info(
                    "drained",
                    extra={
                        "fields": {
                            "seconds": round(time.monotonic() - self.drain_started, 3),
                            "refused": self.drain.refused,
                        }
                    },
                )
                self.should_exit = True
        return await super().on_tick(counter)


def serve(app: ASGIApp, *, host: str, port: int, grace_seconds: float, on_drain: Callable[[], None]) -> None:
    """Serve ``app`` until SIGTERM/SIGINT, then drain and exit (see the module docstring)."""
    drain = Drain(app)
    config = uvicorn.Config(
        drain,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        # Past the grace period only; until then the drain decides when uvicorn shuts down.
        timeout_graceful_shutdown=CLOSE_CONNECTIONS_SECONDS + int(grace_seconds),
    )
    server = GracefulServer(config, drain, grace_seconds=grace_seconds, on_drain=on_drain)
    server.run()
    if server.abandoned:
        # Worker threads of abandoned requests would hold the interpreter open past the grace period.
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
