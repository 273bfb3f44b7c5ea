"""One booking: its status for anyone with its id; its details and cancelling for its token."""

import logging
from typing import Any

from fastapi import APIRouter, BackgroundTasks, HTTPException, status

from clinic.api.booking_keys import (
    OPENED,
    BookingId,
    key_required,
    opened,
    refuse_late_change,
    stored,
)
from clinic.api.deps import TOKEN_OPTIONAL, BookingKey, Publish, Staff, StaffMember
from clinic.api.errors import NOT_FOUND, NOT_OPENED, STAFF, UNAVAILABLE
from clinic.api.privacy import audit_read
from clinic.api.schemas import (
    BookingOut,
    BookingStatusOut,
    ErrorOut,
)
from clinic.domain.announcements import announce_recorded
from clinic.domain.cancellation import CannotCancel, cancel
from clinic.domain.no_show import NotYetMissed, mark_no_show
from clinic.logs import current_booking_id
from clinic.messages import BookingStatus

log = logging.getLogger("clinic.api")

router = APIRouter(tags=["bookings"])
CANCEL_ANSWERS: dict[int | str, dict[str, Any]] = {
    **OPENED,
    409: {
        "model": ErrorOut,
        "description": (
            "A rejected booking, or a missed appointment, cannot be cancelled; nor, with "
            "the manage token, an appointment less than CLINIC_MIN_NOTICE away."
        ),
    },
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
    booking_id: BookingId, key: BookingKey, background: BackgroundTasks, publishers: Publish
) -> BookingOut:
    """Cancel a pending or confirmed booking, free its slot and tell the patient.

    Needs the booking's manage token, or a staff token. With the manage token, not
    within ``CLINIC_MIN_NOTICE`` (24 h) of the appointment: then the patient calls
    the clinic, which may still fill the time. Cancelling a cancelled booking
    changes nothing and answers the same. The booking stays, readable at its URL as
    ``cancelled``.
    """
    key = key_required(key)
    booking = opened(await stored(booking_id), key)
    refuse_late_change(booking, key)
    try:
        cancelled, by_this_call = await cancel(booking_id)
    except CannotCancel as exc:
        what = (
            "A rejected booking" if exc.status is BookingStatus.REJECTED else "A missed appointment"
        )
        raise HTTPException(status.HTTP_409_CONFLICT, f"{what} cannot be cancelled.") from exc
    if cancelled is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_OPENED)
    current_booking_id.set(cancelled.id)
    if isinstance(key, Staff):
        audit_read(key, f"and cancelled booking {cancelled.id}")
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


NOT_MISSED = "Only a confirmed appointment whose time has come can be marked a no-show."


@router.post(
    "/booking/{booking_id}/no-show",
    response_model=BookingOut,
    response_model_exclude_none=True,
    responses={
        **STAFF,
        404: {"model": ErrorOut, "description": NOT_FOUND},
        409: {"model": ErrorOut, "description": NOT_MISSED},
        **UNAVAILABLE,
    },
    summary="Mark a missed appointment (staff)",
)
async def mark_missed(
    booking_id: BookingId, staff: StaffMember, background: BackgroundTasks, publishers: Publish
) -> BookingOut:
    """Record that the patient did not come: the booking becomes ``no_show``.

    Staff only, and only for a confirmed booking whose appointment time has come.
    Marking it again changes nothing and answers the same. The change is announced
    on the fanout exchange and counted in the metrics; the patient is not emailed.
    """
    if await stored(booking_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    try:
        missed, by_this_call = await mark_no_show(booking_id)
    except NotYetMissed as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, NOT_MISSED) from exc
    if missed is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    current_booking_id.set(missed.id)
    audit_read(staff, f"and marked booking {missed.id} a no-show")
    if by_this_call:
        background.add_task(announce_recorded, publishers, missed)
    return BookingOut.of(missed)


@router.get(
    "/booking/{booking_id}",
    response_model=BookingOut | BookingStatusOut,
    response_model_exclude_none=True,
    responses={404: {"model": ErrorOut, "description": NOT_FOUND}, **UNAVAILABLE},
    summary="Look up one booking",
    openapi_extra=TOKEN_OPTIONAL,
)
async def get_booking(booking_id: BookingId, key: BookingKey) -> BookingOut | BookingStatusOut:
    """The booking's status (pending, confirmed, rejected or cancelled).

    With its manage token, or a staff token, also the patient's details and the
    appointment; with a token that does not open it, 404.
    """
    booking = await stored(booking_id)
    if key is None:
        if booking is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
        return BookingStatusOut.of(booking)
    shown = opened(booking, key)
    if isinstance(key, Staff):
        audit_read(key, f"booking {shown.id}")
    return BookingOut.of(shown)
