"""A worker process's own small HTTP server: ``/health``, ``/ready`` and ``/metrics``.

The workers are plain FastStream apps; this serves, next to the consumers, what
an orchestrator and Prometheus ask a worker:

- ``GET /health``: 200 while the process runs (liveness);
- ``GET /ready``: 200 while its broker connection and the database answer, 503
  otherwise (the compose healthcheck);
- ``GET /metrics``: the process's metrics in the Prometheus text format.

It listens on ``CLINIC_WORKER_HTTP_HOST``:``CLINIC_WORKER_HTTP_PORT``, plus the
child's number under ``faststream run --workers N``. A port already taken is one
error line, and the worker consumes on without it: the bookings matter more.
"""

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Protocol

import uvicorn
from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clinic.metrics import exposition
from clinic.settings import settings
from clinic.store.database import database_is_up

log = logging.getLogger("clinic.worker")


class Pingable(Protocol):
    """A broker connection that can say whether it is up (every FastStream broker can)."""

    async def ping(self, wait: float | None, /) -> bool:
        """Whether the connection is up, waiting up to ``wait`` seconds for it."""
        ...


def probes_app(
    brokers: Sequence[Pingable], mongo: AsyncMongoClient[dict[str, object]]
) -> Starlette:
    """The worker's HTTP app: liveness, readiness of ``brokers`` and ``mongo``, and metrics."""

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> Response:
        pings = [broker.ping(settings.mongo_timeout) for broker in brokers]
        broker_up = all(await asyncio.gather(*pings))
        database_up = await database_is_up(mongo)
        up = bool(brokers) and broker_up and database_up
        body = {
            "status": "ready" if up else "unavailable",
            "broker": "up" if broker_up else "down",
            "database": "up" if database_up else "down",
        }
        return JSONResponse(body, status_code=200 if up else 503)

    async def metrics(request: Request) -> Response:
        body, content_type = exposition()
        return Response(body, media_type=content_type)

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ]
    )


class _Server(uvicorn.Server):
    """uvicorn, leaving SIGTERM and SIGINT to the FastStream app (its graceful stop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _listening_socket(worker_id: int | None) -> socket.socket | None:
    """The socket this worker process serves on; None if it serves none, or the port is taken."""
    if settings.worker_http_port == 0:
        return None
    host, port = settings.worker_http_host, settings.worker_http_port + (worker_id or 0)
    try:
        return socket.create_server((host, port))
    except OSError as exc:
        # One line, no traceback: the worker goes on without them.
        log.error(
            "no /health, /ready or /metrics: cannot listen on %s:%d (%s); set "
            "CLINIC_WORKER_HTTP_PORT to a free port, or 0 to serve none. Consuming without them.",
            host,
            port,
            exc.strerror or exc,
        )
        return None


@contextlib.asynccontextmanager
async def serving_probes(
    brokers: Sequence[Pingable],
    mongo: AsyncMongoClient[dict[str, object]],
    worker_id: int | None = None,
) -> AsyncIterator[None]:
    """Serve the worker's HTTP endpoints for as long as the block runs."""
    sock = _listening_socket(worker_id)
    if sock is None:
        yield
        return
    config = uvicorn.Config(
        probes_app(brokers, mongo),
        log_config=None,  # the clinic's logging, set up by the worker app
        access_log=False,  # a probe every few seconds is not news
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="worker http")
    host, port = sock.getsockname()[:2]
    log.info("serving /health, /ready and /metrics on http://%s:%d", host, port)
    try:
        yield
    finally:
        server.should_exit = True
        await serving
