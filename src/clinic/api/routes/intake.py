"""Patients ask for appointments: POST /book."""

import hashlib
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request, Response, status

from clinic.api.deps import TOKEN_OPTIONAL, IntakeState
from clinic.api.errors import (
    BUSY,
    LIMITED,
    TOO_LARGE,
    busy,
    limited,
    refusals,
    refuse_unbookable,
)
from clinic.api.rate_limits import client_address
from clinic.api.schemas import (
    BookingRequest,
    ErrorOut,
    NewBookingOut,
)
from clinic.domain.admission import NEVER_BOOKABLE, too_many_upcoming
from clinic.domain.manage_tokens import new_manage_token
from clinic.domain.outbox import request_due
from clinic.logs import current_booking_id
from clinic.metrics import count_booking
from clinic.redaction import mask_email
from clinic.store import bookings
from clinic.store.documents import Booking, new_booking_id
from clinic.store.idempotency import KeyReused, claim_key, release_key

log = logging.getLogger("clinic.api")

router = APIRouter(tags=["bookings"])


def _opened_with_token(operation_id: str, what: str) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "description": f"{what}, with the manage token this answer carries.",
        "parameters": {
            "path.booking_id": "$response.body#/id",
            "header.Authorization": "Bearer {$response.body#/manageToken}",
        },
    }


MANAGE_LINKS = {
    "GetBooking": _opened_with_token("get_booking_booking__booking_id__get", "Look the booking up"),
    "CancelBooking": _opened_with_token(
        "cancel_booking_booking__booking_id__cancel_post", "Cancel the booking"
    ),
    "DeleteBooking": _opened_with_token("delete_booking", "Cancel the booking"),
}
"""What a client can do next with the booking it made (OpenAPI links)."""


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
        202: {"links": MANAGE_LINKS},
        200: {
            "model": NewBookingOut,
            "description": (
                "A repeated request: the booking it made, with its manage token (with "
                "CLINIC_MANAGE_TOKEN_KEY unset, a new one that replaces the one the lost "
                "answer carried)."
            ),
            "links": MANAGE_LINKS,
        },
        403: {"model": ErrorOut, "description": "The staff token sent is not valid."},
        409: {"model": ErrorOut, "description": "The Idempotency-Key came with another body."},
        **TOO_LARGE,
        **refusals(
            "blank",
            "no_letter",
            "control_character",
            "operator",
            "email_address",
            *NEVER_BOOKABLE,
        ),
        **LIMITED,
        **BUSY,
    },
    summary="Request an appointment",
    openapi_extra=TOKEN_OPTIONAL,
)
async def book(
    request: BookingRequest,
    http: Request,
    response: Response,
    intake: IntakeState,
    idempotency_key: IdempotencyKeyHeader = None,
) -> NewBookingOut:
    """Store the booking as pending and hand it to the booking workers.

    202 means the booking is durably stored, and so will be processed: its
    request is published as the answer goes out, or, if the broker is
    unreachable or this process dies first, by the outbox relay once
    ``CLINIC_OUTBOX_GRACE`` has passed. Follow ``Location`` to see it become
    confirmed or rejected. The answer's ``manageToken`` is the patient's key to
    the booking's details and to cancelling it; it is shown only in this answer.

    A request that can never be confirmed is a 422 at once, with the reason code
    the worker would give. Limits answer 429 with ``Retry-After``; a staff token
    lifts the per-client ones, for reception booking on a patient's behalf.
    """
    hand_overs, backlog, staff = intake.hand_overs, intake.backlog, intake.staff
    if staff is None and (refused := intake.rate.take(client_address(http))):
        raise limited(*refused)
    await refuse_unbookable(request.date, request.doctor_id)
    if await backlog.too_long():
        raise busy(backlog.refresh * 5)
    booking_id = new_booking_id()
    new = True
    if idempotency_key:
        booking_id, new = await _claimed_booking_id(idempotency_key, request, booking_id)
    token, token_digest = new_manage_token(booking_id)
    if new and staff is None and (upcoming := await too_many_upcoming(request.patient_email)):
        if idempotency_key:
            await release_key(idempotency_key)  # so that a retry is checked again
        raise limited(upcoming.message, upcoming.retry_after)
    ticket = hand_overs.ticket()
    try:
        booking = Booking(
            id=booking_id,
            patient_name=request.patient_name,
            patient_email=str(request.patient_email),
            date=request.date,
            doctor_id=request.doctor_id,
            language=request.language,
            # Stored with the booking, so no crash can leave it without its request.
            request_due_at=request_due(),
            hand_over=ticket,
            manage_token_digest=token_digest,
        )
        inserted = await bookings.insert(booking)
    except BaseException:
        hand_overs.failed(ticket, booking_id)  # perhaps stored all the same
        raise
    if not inserted:
        hand_overs.not_stored(ticket)
        # A retried key whose first attempt was stored after all: the same booking.
        earlier = await bookings.get(booking_id)
        if earlier is None:
            raise LookupError(f"booking {booking_id} was stored, then vanished")
        # The key came again because the first answer, and its token, were lost: a
        # derived token is the same again, a random one replaces the first.
        if earlier.manage_token_digest != token_digest:
            await bookings.replace_manage_token(earlier.id, token_digest)
        response.status_code = status.HTTP_200_OK
        response.headers["Location"] = f"/booking/{earlier.id}"
        return NewBookingOut.opened_by(earlier, token)
    backlog.accepted()
    count_booking("received")
    current_booking_id.set(booking.id)
    if log.isEnabledFor(logging.DEBUG):  # not masking, on every booking, a line nobody reads
        log.debug("booking accepted for %s", mask_email(booking.patient_email))
    hand_overs.start(ticket, booking.id)
    response.headers["Location"] = f"/booking/{booking.id}"
    return NewBookingOut.opened_by(booking, token)


def fingerprint(request: BookingRequest) -> str:
    """A digest of the request as validated (so spacing or key order do not matter)."""
    return hashlib.sha256(request.model_dump_json(by_alias=True).encode()).hexdigest()


async def _claimed_booking_id(
    key: str, request: BookingRequest, booking_id: str
) -> tuple[str, bool]:
    """The id to store this request's booking under: the one the key was first claimed for.

    And whether the key is new: a repeated request was checked against the limits
    the first time.

    A retry of a request whose answer was lost (a timeout, a 503) reuses that id,
    so however the first attempt ended, at most one booking exists for the key.
    """
    try:
        earlier_id = await claim_key(key, fingerprint(request), booking_id)
    except KeyReused as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "This Idempotency-Key was used with another request."
        ) from exc
    return (earlier_id, False) if earlier_id else (booking_id, True)
