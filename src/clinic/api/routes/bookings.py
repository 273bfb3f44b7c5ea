"""Patients book and look up appointments."""

import hashlib
import logging
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Header, HTTPException, Path, Response, status

from clinic.api.deps import Publish
from clinic.api.errors import NOT_FOUND, TOO_LARGE, UNAVAILABLE, invalid
from clinic.api.schemas import BookingOut, BookingRequest, ErrorOut
from clinic.domain.cancellation import CannotCancel, cancel
from clinic.domain.outbox import announce_recorded, hand_over, request_due
from clinic.logs import current_booking_id
from clinic.redaction import mask_email
from clinic.store import bookings, doctors
from clinic.store.documents import Booking, new_booking_id
from clinic.store.idempotency import KeyReused, claim_key

log = logging.getLogger("clinic.api")

router = APIRouter(tags=["bookings"])
BookingId = Annotated[
    str,
    Path(
        description="The booking's id, as POST /book answered it.",
        examples=["3f2b8c1e-7d4a-4c55-9a0e-2b6f1d9c8e71"],
    ),
]
MAX_ID_LENGTH = 64
"""Longer ids cannot exist: they are answered 404 without asking the database."""


IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description=(
            "Any unique string (a UUID, say). The same key with the same body books once "
            "and answers with that booking; with another body it answers 409. Keys are "
            "remembered for CLINIC_IDEMPOTENCY_TTL seconds (a day)."
        ),
    ),
]


@router.post(
    "/book",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BookingOut,
    response_model_exclude_none=True,
    responses={
        200: {"model": BookingOut, "description": "A repeated request: the booking it made."},
        409: {"model": ErrorOut, "description": "The Idempotency-Key came with another body."},
        **TOO_LARGE,
        **UNAVAILABLE,
    },
    summary="Request an appointment",
)
async def book(
    request: BookingRequest,
    response: Response,
    background: BackgroundTasks,
    publishers: Publish,
    idempotency_key: IdempotencyKeyHeader = None,
) -> BookingOut:
    """Store the booking as pending and hand it to the booking workers.

    202 means the booking is durably stored, and so will be processed: its
    request is published right after the answer, or, if the broker is
    unreachable or this process dies first, by the outbox relay once
    ``CLINIC_OUTBOX_GRACE`` has passed. Follow ``Location`` to see it become
    confirmed or rejected.
    """
    if request.doctor_id and not await _is_active(request.doctor_id):
        raise invalid(["body", "doctorId"], "No active doctor has this id.")
    booking_id = new_booking_id()
    if idempotency_key:
        booking_id = await _claimed_booking_id(idempotency_key, request, booking_id)
    booking = Booking(
        id=booking_id,
        patient_name=request.patient_name,
        patient_email=str(request.patient_email),
        date=request.date,
        doctor_id=request.doctor_id,
        # Stored with the booking, so no crash can leave it without its request.
        request_due_at=request_due(),
    )
    if not await bookings.insert(booking):
        # A retried key whose first attempt was stored after all: the same booking.
        earlier = await bookings.get(booking_id)
        if earlier is None:
            raise LookupError(f"booking {booking_id} was stored, then vanished")
        response.status_code = status.HTTP_200_OK
        response.headers["Location"] = f"/booking/{earlier.id}"
        return BookingOut.of(earlier)
    current_booking_id.set(booking.id)
    log.info("booking accepted for %s", mask_email(booking.patient_email))
    background.add_task(hand_over, publishers, booking.id)
    response.headers["Location"] = f"/booking/{booking.id}"
    return BookingOut.of(booking)


async def _is_active(doctor_id: str) -> bool:
    doctor = await doctors.get(doctor_id)
    return doctor is not None and doctor.active


def fingerprint(request: BookingRequest) -> str:
    """A digest of the request as validated (so spacing or key order do not matter)."""
    return hashlib.sha256(request.model_dump_json(by_alias=True).encode()).hexdigest()


async def _claimed_booking_id(key: str, request: BookingRequest, booking_id: str) -> str:
    """The id to store this request's booking under: the one the key was first claimed for.

    A retry of a request whose answer was lost (a timeout, a 503) reuses that id,
    so however the first attempt ended, at most one booking exists for the key.
    """
    try:
        earlier_id = await claim_key(key, fingerprint(request), booking_id)
    except KeyReused as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "This Idempotency-Key was used with another request."
        ) from exc
    return earlier_id or booking_id


CANCEL_ANSWERS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": NOT_FOUND},
    409: {"model": ErrorOut, "description": "A rejected booking cannot be cancelled."},
    **UNAVAILABLE,
}


@router.post(
    "/booking/{booking_id}/cancel",
    response_model=BookingOut,
    response_model_exclude_none=True,
    responses=CANCEL_ANSWERS,
    summary="Cancel a booking",
)
async def cancel_booking(
    booking_id: BookingId, background: BackgroundTasks, publishers: Publish
) -> BookingOut:
    """Cancel a pending or confirmed booking, free its slot and tell the patient.

    Cancelling a cancelled booking changes nothing and answers the same.
    """
    try:
        cancelled, by_this_call = (
            await cancel(booking_id) if len(booking_id) <= MAX_ID_LENGTH else (None, False)
        )
    except CannotCancel as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "A rejected booking cannot be cancelled."
        ) from exc
    if cancelled is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    current_booking_id.set(cancelled.id)
    if by_this_call:
        background.add_task(announce_recorded, publishers, cancelled)
    return BookingOut.of(cancelled)


router.add_api_route(
    "/booking/{booking_id}",
    cancel_booking,
    methods=["DELETE"],
    response_model=BookingOut,
    response_model_exclude_none=True,
    responses=CANCEL_ANSWERS,
    summary="Cancel a booking (same as POST /booking/{id}/cancel)",
    operation_id="delete_booking",
)


@router.get(
    "/booking/{booking_id}",
    response_model=BookingOut,
    response_model_exclude_none=True,
    responses={404: {"model": ErrorOut, "description": NOT_FOUND}, **UNAVAILABLE},
    summary="Look up one booking",
)
async def get_booking(booking_id: BookingId) -> BookingOut:
    """The booking's details and status (pending, confirmed, rejected or cancelled)."""
    booking = await bookings.get(booking_id) if len(booking_id) <= MAX_ID_LENGTH else None
    if booking is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    return BookingOut.of(booking)
