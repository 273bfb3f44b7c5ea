"""HTTP API: patients book and look up appointments (``uvicorn clinic.api:app``).

The API stores a booking, then publishes the request to the booking workers
through the same broker object the workers use. It never consumes.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from beanie import SortDirection
from fastapi import APIRouter, FastAPI, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse

from clinic import __version__
from clinic.database import DatabaseUnavailable, connect_database, database_is_up
from clinic.dependencies import MongoClient
from clinic.logs import configure_logging
from clinic.messages import BookAppointment
from clinic.models import Booking
from clinic.privacy import mask_email
from clinic.schemas import BookingList, BookingOut, BookingRequest, ErrorOut, HealthOut
from clinic.settings import settings
from clinic.topology import booking_request_publisher, broker, declare_topology

log = logging.getLogger("clinic.api")

NOT_FOUND = "No booking with this id."
NEWEST_FIRST = [("created_at", SortDirection.DESCENDING), ("_id", SortDirection.DESCENDING)]
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorOut, "description": "The broker or the database is down."}
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
async def book(request: BookingRequest, response: Response) -> BookingOut:
    """Store the booking as pending and hand it to the booking workers.

    202 means the booking is stored and its request is confirmed by the broker;
    follow ``Location`` to see it become confirmed or rejected.
    """
    booking = Booking(
        patient_name=request.patient_name,
        patient_email=str(request.patient_email),
        date=request.date,
    )
    await booking.insert()
    try:
        async with asyncio.timeout(settings.publish_timeout):
            await booking_request_publisher.publish(
                BookAppointment(booking_id=booking.id), correlation_id=booking.id
            )
    except Exception as exc:
        # Kept, marked and findable: it can be re-driven once the broker is back.
        log.error("publish failed: %r", exc, extra={"booking_id": booking.id})
        await _mark(booking, request_published=False, publish_error=repr(exc)[:500])
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "The booking could not be queued for processing; please try again shortly.",
        ) from exc
    await _mark(booking, request_published=True)
    log.info(
        "booking accepted for %s",
        mask_email(booking.patient_email),
        extra={"booking_id": booking.id},
    )
    response.headers["Location"] = f"/booking/{booking.id}"
    return BookingOut.of(booking)


async def _mark(booking: Booking, **fields: object) -> None:
    try:
        await Booking.get_pymongo_collection().update_one({"_id": booking.id}, {"$set": fields})
    except DatabaseUnavailable as exc:
        log.warning("could not record %s: %r", fields, exc, extra={"booking_id": booking.id})


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
