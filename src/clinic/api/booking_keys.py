"""Who may open a booking: anyone sees its status by id; its manage token or a staff token
open its details and the changes; nobody learns from a refusal whether it exists."""

from typing import Annotated, Any

from fastapi import HTTPException, Path, status

from clinic.api.deps import Staff
from clinic.api.errors import NOT_OPENED
from clinic.api.schemas import ErrorOut
from clinic.domain.cancellation import within_notice
from clinic.domain.manage_tokens import opens
from clinic.messages import BookingStatus
from clinic.settings import settings
from clinic.store import bookings
from clinic.store.documents import Booking

BookingId = Annotated[
    str,
    Path(
        description="The booking's id, as POST /book answered it.",
        examples=["3f2b8c1e-7d4a-4c55-9a0e-2b6f1d9c8e71"],
    ),
]
OPENED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "No manage token was sent."},
    404: {"model": ErrorOut, "description": NOT_OPENED},
}
"""The answers of a route that needs the booking's manage token or a staff token."""
MAX_ID_LENGTH = 64
"""Longer ids cannot exist: they are answered 404 without asking the database."""


def opened(booking: Booking | None, key: Staff | str) -> Booking:
    """``booking``, if ``key`` opens it; else the same 404 as for no booking at all."""
    if booking is None or not (isinstance(key, Staff) or opens(booking, key)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_OPENED)
    return booking


def key_required(key: Staff | str | None) -> Staff | str:
    """The key sent; 401 when none was."""
    if key is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Send the booking's manage token as Authorization: Bearer <token>.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return key


CHANGEABLE = {BookingStatus.PENDING, BookingStatus.CONFIRMED}
"""What a patient may still change, notice permitting."""


def refuse_late_change(booking: Booking, key: Staff | str) -> None:
    """409 for a patient changing an appointment within ``CLINIC_MIN_NOTICE``: the clinic
    may not fill the time any more, so the patient calls. Staff are not limited."""
    if isinstance(key, Staff) or booking.status not in CHANGEABLE or not within_notice(booking):
        return
    hours = settings.min_notice.total_seconds() / 3600
    raise HTTPException(
        status.HTTP_409_CONFLICT,
        f"Less than {hours:g} hours before the appointment it can only be changed by the "
        "clinic: please call us.",
    )


async def stored(booking_id: str) -> Booking | None:
    """The booking with this id, or None; an id too long to exist is not looked up."""
    return await bookings.get(booking_id) if len(booking_id) <= MAX_ID_LENGTH else None
