"""What every worker process does around its handlers: database, topology, retries."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from faststream import FastStream
from faststream.specification import AsyncAPI

from clinic import __version__
from clinic.database import connect_database
from clinic.logs import LogBookingId, configure_logging
from clinic.outbox import run_relay
from clinic.retries import RetryOrPark
from clinic.settings import settings
from clinic.topology import broker, declare_topology

broker.add_middleware(LogBookingId)
broker.add_middleware(RetryOrPark)


@asynccontextmanager
async def _worker_lifespan() -> AsyncIterator[None]:
    configure_logging(settings.log_level)
    client = await connect_database(create_indexes=False)
    # Declared before any subscriber consumes, so a rejected message always has
    # a retry queue to go to.
    await declare_topology()
    try:
        yield
    finally:
        await client.close()


def worker_app(title: str, *, outbox_relay: bool = False) -> FastStream:
    """A FastStream app running the handlers imported so far on the shared broker.

    With ``outbox_relay`` it also publishes the requests of stored bookings that
    the API could not publish (see ``clinic.outbox``).
    """
    app = FastStream(
        broker,
        lifespan=_worker_lifespan,
        logger=logging.getLogger("clinic.worker"),
        specification=AsyncAPI(
            title=title,
            version=__version__,
            description="Clinic appointment booking: queues, exchanges and messages.",
        ),
    )
    if outbox_relay:
        _run_outbox_relay(app)
    return app


def _run_outbox_relay(app: FastStream) -> None:
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    @app.after_startup
    async def start_relay() -> None:
        stop.clear()
        tasks.append(asyncio.create_task(run_relay(stop), name="outbox relay"))

    # Before the broker closes, so a publish in progress can finish.
    @app.on_shutdown
    async def stop_relay() -> None:
        stop.set()
        while tasks:
            await tasks.pop()
