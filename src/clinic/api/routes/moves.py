"""Patients move their appointment: POST /booking/{id}/reschedule."""

from fastapi import APIRouter, HTTPException, status

from clinic.api.booking_keys import (
    OPENED,
    BookingId,
    key_required,
    opened,
    refuse_late_change,
    stored,
)
from clinic.api.deps import BookingKey, HandOver, Staff
from clinic.api.errors import TOO_LARGE, UNAVAILABLE, refusals, refuse_unbookable
from clinic.api.privacy import audit_read
from clinic.api.schemas import BookingOut, ErrorOut, MoveRequest
from clinic.domain.admission import NEVER_BOOKABLE
from clinic.domain.moves import CannotMove, ask_to_move
from clinic.domain.outbox import request_name
from clinic.logs import current_booking_id

router = APIRouter(tags=["bookings"])


@router.post(
    "/booking/{booking_id}/reschedule",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BookingOut,
    response_model_exclude_none=True,
    responses={
        **OPENED,
        409: {
            "model": ErrorOut,
            "description": (
                "The booking is not confirmed, a move of it is being decided, it is at that "
                "time already, or, with the manage token, the appointment is less than "
                "CLINIC_MIN_NOTICE away."
            ),
        },
        **TOO_LARGE,
        **refusals(*NEVER_BOOKABLE),
        429: {"model": ErrorOut, "description": "The new date is beyond the booking horizon."},
        **UNAVAILABLE,
    },
    summary="Move an appointment to another free slot",
)
async def reschedule(
    booking_id: BookingId,
    request: MoveRequest,
    key: BookingKey,
    hand_overs: HandOver,
) -> BookingOut:
    """Ask to move a confirmed appointment to another free slot, of its doctor or another.

    Needs the manage token (not within ``CLINIC_MIN_NOTICE`` of the appointment) or a
    staff token. 202: the move is stored as ``pendingMove`` and goes through the same
    confirmation step as a booking. The new slot is held before the old one is given
    up, so the patient keeps the appointment until the move is decided, and keeps it
    if the new time is taken meanwhile. The email says how it ended; a moved
    appointment's calendar invite moves with it.
    """
    key = key_required(key)
    booking = opened(await stored(booking_id), key)
    refuse_late_change(booking, key)
    doctor_id = request.doctor_id or booking.doctor_id
    await refuse_unbookable(request.date, doctor_id)
    ticket = hand_overs.ticket()
    try:
        moving = await ask_to_move(booking, request.date, doctor_id, ticket)
    except CannotMove as refused:
        hand_overs.not_stored(ticket)
        raise HTTPException(status.HTTP_409_CONFLICT, str(refused)) from None
    except BaseException:
        hand_overs.failed(ticket, booking.id)  # perhaps stored all the same
        raise
    current_booking_id.set(moving.id)
    if isinstance(key, Staff):
        audit_read(key, f"and moved booking {moving.id}")
    hand_overs.start(ticket, moving.id, request_name(moving))
    return BookingOut.of(moving)
