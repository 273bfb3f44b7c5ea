"""Patients ask for appointments: POST /book."""

import hashlib
import logging
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Header, HTTPException, Response, status

from clinic.api.deps import Publish
from clinic.api.errors import TOO_LARGE, UNAVAILABLE, invalid
from clinic.api.schemas import (
    BookingOut,
    BookingRequest,
    ErrorOut,
    NewBookingOut,
)
from clinic.domain.manage_tokens import new_manage_token
from clinic.domain.outbox import hand_over, request_due
from clinic.logs import current_booking_id
from clinic.redaction import mask_email
from clinic.store import bookings, doctors
from clinic.store.documents import Booking, new_booking_id
from clinic.store.idempotency import KeyReused, claim_key

log = logging.getLogger("clinic.api")

router = APIRouter(tags=["bookings"])


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
    response_model=NewBookingOut,
    response_model_exclude_none=True,
    responses={
        200: {
            "model": NewBookingOut,
            "description": (
                "A repeated request: the booking it made, with a new manage token that "
                "replaces the one the lost answer carried."
            ),
        },
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
) -> NewBookingOut:
    """Store the booking as pending and hand it to the booking workers.

    202 means the booking is durably stored, and so will be processed: its
    request is published right after the answer, or, if the broker is
    unreachable or this process dies first, by the outbox relay once
    ``CLINIC_OUTBOX_GRACE`` has passed. Follow ``Location`` to see it become
    confirmed or rejected. The answer's ``manageToken`` is the patient's key to
    the booking's details and to cancelling it; it is shown only in this answer.
    """
    if request.doctor_id and not await _is_active(request.doctor_id):
        raise invalid(["body", "doctorId"], "No active doctor has this id.")
    booking_id = new_booking_id()
    token, token_digest = new_manage_token()
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
        manage_token_digest=token_digest,
    )
    if not await bookings.insert(booking):
        # A retried key whose first attempt was stored after all: the same booking.
        earlier = await bookings.get(booking_id)
        if earlier is None:
            raise LookupError(f"booking {booking_id} was stored, then vanished")
        # The key came again because the first answer, and its token, were lost.
        await bookings.replace_manage_token(earlier.id, token_digest)
        response.status_code = status.HTTP_200_OK
        response.headers["Location"] = f"/booking/{earlier.id}"
        return NewBookingOut(**BookingOut.of(earlier).model_dump(), manage_token=token)
    current_booking_id.set(booking.id)
    log.info("booking accepted for %s", mask_email(booking.patient_email))
    background.add_task(hand_over, publishers, booking.id)
    response.headers["Location"] = f"/booking/{booking.id}"
    return NewBookingOut(**BookingOut.of(booking).model_dump(), manage_token=token)


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
