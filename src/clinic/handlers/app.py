"""The worker app factory: a broker of its own, the routers a process runs, and what surrounds them.

Every worker process connects to the database, declares the topology before it
consumes (so a rejected message always has a retry queue to go to), logs the
booking id of each message, and retries or parks what fails. A process that runs
the booking handler also runs the outbox relay.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from faststream import Context, FastStream
from faststream.rabbit import RabbitRouter
from faststream.specification import AsyncAPI

from clinic import __version__
from clinic.clock import utcnow
from clinic.domain.outbox import run_relay
from clinic.domain.retention import run_retention
from clinic.garbage_collector import settle_after_startup
from clinic.handlers.probes import serving_probes
from clinic.logs import LogBookingId, configure_logging
from clinic.messaging.broker import Publishers, new_broker
from clinic.messaging.retries import RetryOrPark
from clinic.messaging.topology import declare_topology
from clinic.store.database import connect_database
from clinic.tracing import start_tracing


@asynccontextmanager
async def _worker_lifespan(
    app: Annotated[FastStream, Context()], worker_id: int | None = None
) -> AsyncIterator[None]:
    # The API creates the indexes; a restarted worker must not wait on index builds.
    client = await connect_database(create_indexes=False)
    await declare_topology()
    settle_after_startup()
    try:
        # /health, /ready and /metrics; `faststream run --workers N` numbers each child.
        async with serving_probes(app.brokers, client, worker_id):
            yield
    finally:
        await client.close()


def worker_app(title: str, *routers: RabbitRouter, outbox_relay: bool = False) -> FastStream:
    """A FastStream app running ``routers`` on a broker of its own.

    The broker's ``publishers`` are in its context for the handlers and the
    middlewares. With ``outbox_relay`` the app also re-sends what the outbox
    holds overdue (see ``clinic.domain.outbox``).
    """
    # Here, not in the lifespan: `faststream run` imports the app (in its parent
    # process and in each child) before it logs, so every line has the clinic's format.
    configure_logging()
    # Before the broker, whose middlewares depend on it; "clinic booking worker" traces
    # as clinic-booking-worker.
    start_tracing(title.replace(" ", "-"))
    broker = new_broker()
    publishers = Publishers.on(broker)
    broker.context.set_global("publishers", publishers)
    broker.add_middleware(LogBookingId)
    broker.add_middleware(RetryOrPark)
    broker.include_routers(*routers)
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
        _run_in_background(app, publishers)
    return app


def _run_in_background(app: FastStream, publishers: Publishers) -> None:
    """The outbox relay, and retention of patient data, for as long as the app runs."""
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    @app.after_startup
    async def start_relay() -> None:
        stop.clear()
        # The relay's clock: the real one, unless a test put one a day ahead in the context.
        clock = app.broker.context.get("clock", utcnow) if app.broker else utcnow
        relay = run_relay(publishers, stop, clock)
        tasks.append(asyncio.create_task(relay, name="outbox relay"))
        tasks.append(asyncio.create_task(run_retention(stop), name="retention"))

    # Before the broker closes, so a send in progress can finish.
    @app.on_shutdown
    async def stop_relay() -> None:
        stop.set()
        while tasks:
            await tasks.pop()
