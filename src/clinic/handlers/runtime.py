"""What every worker process does around its handlers: database, topology, retries."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from faststream import FastStream
from faststream.specification import AsyncAPI

from clinic import __version__
from clinic.database import connect_database
from clinic.logs import configure_logging
from clinic.retries import RetryOrPark
from clinic.settings import settings
from clinic.topology import broker, declare_topology

broker.add_middleware(RetryOrPark)


@asynccontextmanager
async def _worker_lifespan() -> AsyncIterator[None]:
    configure_logging(settings.log_level)
    client = await connect_database()
    # Declared before any subscriber consumes, so a rejected message always has
    # a retry queue to go to.
    await declare_topology()
    try:
        yield
    finally:
        await client.close()


def worker_app(title: str) -> FastStream:
    """A FastStream app running the handlers imported so far on the shared broker."""
    return FastStream(
        broker,
        lifespan=_worker_lifespan,
        logger=logging.getLogger("clinic.worker"),
        specification=AsyncAPI(
            title=title,
            version=__version__,
            description="Clinic appointment booking: queues, exchanges and messages.",
        ),
    )
