"""HTTP API: patients book and look up appointments (``uvicorn clinic.api:app``).

The API stores a booking, then publishes the request to the booking workers
through the same broker object the workers use (see ``clinic.outbox``). It
never consumes.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from beanie import SortDirection
from fastapi import (
    APIRouter,
    BackgroundTasks,
    FastAPI,
    HTTPException,
    Query,
    Request,
    Response,
    status,
)
from fastapi.responses import JSONResponse

from clinic import __version__
from clinic.database import DatabaseUnavailable, connect_database, database_is_up
from clinic.dependencies import MongoClient
from clinic.logs import configure_logging, current_booking_id
from clinic.models import Booking
from clinic.outbox import hand_over
from clinic.privacy import mask_email
from clinic.schemas import BookingList, BookingOut, BookingRequest, ErrorOut, HealthOut
from clinic.settings import settings
from clinic.topology import broker, declare_topology

log = logging.getLogger("clinic.api")

NOT_FOUND = "No booking with this id."
NEWEST_FIRST = [("created_at", SortDirection.DESCENDING), ("_id", SortDirection.DESCENDING)]
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorOut, "description": "The booking database is unavailable."}
}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Connect to MongoDB and RabbitMQ, and declare what the API publishes to."""
    configure_logging(settings.log_level)
    app.state.mongo = await connect_database()
    await broker.connect()
    await declare_topology()
    try:
        yield
    finally:
        await broker.stop()
        await app.state.mongo.close()


router = APIRouter()


@router.post(
    "/book",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BookingOut,
    response_model_exclude_none=True,
    responses=UNAVAILABLE,
    summary="Request an appointment",
)
async def book(
    request: BookingRequest, response: Response, background: BackgroundTasks
) -> BookingOut:
    """Store the booking as pending and hand it to the booking workers.

    202 means the booking is durably stored, and so will be processed: its
    request is published right after the answer, or, if the broker is
    unreachable or this process dies first, by the outbox relay once
    ``CLINIC_OUTBOX_GRACE`` has passed. Follow ``Location`` to see it become
    confirmed or rejected.
    """
    booking = Booking(
        patient_name=request.patient_name,
        patient_email=str(request.patient_email),
        date=request.date,
    )
    await booking.insert()
    current_booking_id.set(booking.id)
    log.info("booking accepted for %s", mask_email(booking.patient_email))
    background.add_task(hand_over, booking.id)
    response.headers["Location"] = f"/booking/{booking.id}"
    return BookingOut.of(booking)


@router.get(
    "/booking/{booking_id}",
    response_model=BookingOut,
    response_model_exclude_none=True,
    responses={404: {"model": ErrorOut, "description": NOT_FOUND}, **UNAVAILABLE},
    summary="Look up one booking",
)
async def get_booking(booking_id: str) -> BookingOut:
    """The booking's details and status (pending, confirmed or rejected, with a reason)."""
    booking = await Booking.get(booking_id) if len(booking_id) <= 64 else None
    if booking is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    return BookingOut.of(booking)


@router.get(
    "/bookings",
    response_model=BookingList,
    response_model_exclude_none=True,
    responses=UNAVAILABLE,
    summary="List bookings, newest first",
)
async def list_bookings(
    limit: Annotated[int, Query(ge=1, le=100, description="Bookings per page.")] = 50,
) -> BookingList:
    """The newest bookings and the total count."""
    query = Booking.find_all()
    total = await query.count()
    newest = await query.sort(NEWEST_FIRST).limit(limit).to_list()
    return BookingList(count=total, bookings=[BookingOut.of(b) for b in newest])


@router.get(
    "/health", response_model=HealthOut, response_model_exclude_none=True, summary="Liveness"
)
async def health() -> HealthOut:
    """The API process is up."""
    return HealthOut(status="ok")


@router.get(
    "/ready",
    response_model=HealthOut,
    response_model_exclude_none=True,
    responses={503: {"model": HealthOut, "description": "A dependency is down."}},
    summary="Readiness",
)
async def ready(mongo: MongoClient) -> JSONResponse:
    """Whether the broker and the database both answer; 503 when either is down."""
    broker_up = await broker.ping(timeout=settings.mongo_timeout)
    database_up = await database_is_up(mongo)
    body = HealthOut(
        status="ready" if broker_up and database_up else "unavailable",
        broker="up" if broker_up else "down",
        database="up" if database_up else "down",
    )
    code = status.HTTP_200_OK if broker_up and database_up else status.HTTP_503_SERVICE_UNAVAILABLE
    return JSONResponse(body.model_dump(exclude_none=True), status_code=code)


app = FastAPI(
    title="clinic",
    version=__version__,
    description="Appointment booking for medical clinics.",
    lifespan=lifespan,
)
app.include_router(router)


@app.exception_handler(DatabaseUnavailable)
async def database_unavailable(request: Request, exc: DatabaseUnavailable) -> JSONResponse:
    """A database outage is a 503 with a JSON error, never a traceback."""
    log.error("database unavailable on %s %s: %r", request.method, request.url.path, exc)
    return JSONResponse(
        {"detail": "The booking database is unavailable; please try again shortly."},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
    )
