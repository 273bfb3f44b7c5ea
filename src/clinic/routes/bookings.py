"""Patients book and look up appointments."""

import logging
from typing import Annotated

from beanie import SortDirection
from fastapi import APIRouter, BackgroundTasks, HTTPException, Query, Response, status

from clinic.logs import current_booking_id
from clinic.models import Booking, Doctor
from clinic.outbox import hand_over
from clinic.privacy import mask_email
from clinic.routes.errors import NOT_FOUND, UNAVAILABLE, invalid
from clinic.schemas import BookingList, BookingOut, BookingRequest, ErrorOut

log = logging.getLogger("clinic.api")

NEWEST_FIRST = [("created_at", SortDirection.DESCENDING), ("_id", SortDirection.DESCENDING)]

router = APIRouter(tags=["bookings"])


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
    if request.doctor_id and not await Doctor.find_one(
        Doctor.id == request.doctor_id,
        Doctor.active == True,  # noqa: E712
    ):
        raise invalid(["body", "doctorId"], "No active doctor has this id.")
    booking = Booking(
        patient_name=request.patient_name,
        patient_email=str(request.patient_email),
        date=request.date,
        doctor_id=request.doctor_id,
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
