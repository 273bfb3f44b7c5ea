"""HTTP API: patients book and look up appointments (``uvicorn clinic.api:app``).

The API stores a booking, then publishes the request to the booking workers
through the same broker object the workers use (see ``clinic.outbox``). It
never consumes. The routes live in ``clinic.routes``.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from clinic import __version__
from clinic.body_limit import BodySizeLimit
from clinic.database import DatabaseUnavailable, connect_database
from clinic.doctors import seed_doctors
from clinic.logs import configure_logging
from clinic.routes import booking_list, bookings, doctors, health
from clinic.settings import settings
from clinic.topology import broker, declare_topology

log = logging.getLogger("clinic.api")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Connect to MongoDB and RabbitMQ, declare what the API publishes to, seed doctors."""
    configure_logging(settings.log_level)
    app.state.mongo = await connect_database()
    if settings.doctors_file:
        await seed_doctors(Path(settings.doctors_file))
    if not settings.staff_token_list:
        log.warning("no CLINIC_STAFF_TOKENS: the staff endpoints refuse everyone")
    await broker.connect()
    await declare_topology()
    try:
        yield
    finally:
        await broker.stop()
        await app.state.mongo.close()


app = FastAPI(
    title="clinic",
    version=__version__,
    description="Appointment booking for medical clinics.",
    lifespan=lifespan,
)
# Ours, not FastAPI's max_body_size: that one answers a declared oversize in plain text.
app.add_middleware(BodySizeLimit)
app.include_router(bookings.router)
app.include_router(booking_list.router)
app.include_router(doctors.router)
app.include_router(health.router)


@app.exception_handler(DatabaseUnavailable)
async def database_unavailable(request: Request, exc: DatabaseUnavailable) -> JSONResponse:
    """A database outage is a 503 with a JSON error, never a traceback."""
    log.error("database unavailable on %s %s: %r", request.method, request.url.path, exc)
    return JSONResponse(
        {"detail": "The booking database is unavailable; please try again shortly."},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
    )
