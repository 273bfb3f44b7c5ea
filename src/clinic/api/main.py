"""The API app: its broker, its database connection and its routes."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from clinic import __version__
from clinic.api.edge import Edge
from clinic.api.failures import database_unavailable, http_error, invalid_request
from clinic.api.rate_limits import BookingRate
from clinic.api.routes import (
    booking_list,
    bookings,
    docs,
    doctors,
    health,
    intake,
    manage_page,
    moves,
)
from clinic.api.routes.metrics import router as metrics_router
from clinic.api.seed import seed_doctors
from clinic.domain.admission import PendingBacklog
from clinic.domain.hand_overs import HandOvers
from clinic.domain.reminders import remind_older_bookings
from clinic.garbage_collector import settle_after_startup
from clinic.logs import configure_logging
from clinic.messaging.broker import Publishers, new_broker, waiting_requests
from clinic.messaging.topology import declare_topology
from clinic.settings import settings
from clinic.store.database import DatabaseUnavailable, connect_database
from clinic.tracing import instrument_api, start_tracing

log = logging.getLogger("clinic.api")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Connect to MongoDB and RabbitMQ, declare what the API publishes to, seed doctors."""
    app.state.mongo = await connect_database()
    if settings.doctors_file:
        await seed_doctors(Path(settings.doctors_file))
    if not settings.staff_token_names:
        log.warning("no CLINIC_STAFF_TOKENS: the staff endpoints refuse everyone")
    if reminded := await remind_older_bookings():
        log.info("scheduled the reminders of %d bookings confirmed before reminders", reminded)
    if not settings.manage_token_key:
        log.warning("no CLINIC_MANAGE_TOKEN_KEY: patients' emails carry no manage link")
    await app.state.broker.connect()
    await declare_topology()
    stop = asyncio.Event()
    marks = asyncio.create_task(app.state.hand_overs.run(stop), name="hand-over marks")
    settle_after_startup()
    try:
        yield
    finally:
        # After the requests in progress (uvicorn waits for them) and their hand-overs,
        # so the last mark covers them.
        await app.state.hand_overs.finish()
        stop.set()
        await marks
        await app.state.broker.stop()
        await app.state.mongo.close()


def create_app() -> FastAPI:
    """The API, with a broker of its own (``app.state.broker``) that it publishes through."""
    # Here, not in the lifespan: uvicorn imports the app after its own logging setup
    # and before its first line, so every line of the process has the clinic's format.
    configure_logging()
    # Before the broker: its middlewares depend on it.
    start_tracing("clinic-api")
    app = FastAPI(
        title="clinic",
        version=__version__,
        description="Appointment booking for medical clinics.",
        lifespan=lifespan,
        # Ours instead (routes/docs.py): FastAPI's pages load their scripts from a CDN.
        docs_url=None,
        redoc_url=None,
        # FastAPI's own OpenTelemetry, off: clinic.tracing traces the requests, and its
        # spans go out without patient data; FastAPI's would record validation errors,
        # which quote the body.
        telemetry={"tracing": False, "metrics": False, "logs": False, "auto_configure": False},
    )
    app.state.broker = broker = new_broker()
    app.state.publishers = publishers = Publishers.on(broker)
    app.state.hand_overs = HandOvers(publishers)
    app.state.booking_rate = BookingRate()
    app.state.backlog = PendingBacklog(lambda: waiting_requests(broker))
    app.include_router(intake.router)
    app.include_router(bookings.router)
    app.include_router(moves.router)
    app.include_router(booking_list.router)
    app.include_router(doctors.router)
    app.include_router(health.router)
    app.include_router(metrics_router)
    app.include_router(docs.router)
    app.include_router(manage_page.router)
    app.add_exception_handler(DatabaseUnavailable, database_unavailable)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    # Ours around every request: its bounds (not FastAPI's max_body_size, which answers
    # a declared oversize in plain text), a 500 for whatever error nothing else handled,
    # no-store answers, and the HTTP metrics.
    app.add_middleware(Edge)
    # Around everything, so a request's span holds all the API does for it; the
    # hand-over of a booking's request continues its trace.
    instrument_api(app)
    return app
