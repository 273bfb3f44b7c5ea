"""Cancelling a booking: its slot is freed and the patient is told, once."""

import logging

from clinic.clock import utcnow
from clinic.domain.announcements import record_status
from clinic.messages import BookingStatus
from clinic.metrics import count_booking
from clinic.settings import settings
from clinic.store import bookings, slots
from clinic.store.documents import Booking

log = logging.getLogger("clinic.booking")

UNCANCELLABLE = {BookingStatus.REJECTED, BookingStatus.NO_SHOW}
"""What a booking cannot be cancelled from: it holds no appointment to give up."""


def within_notice(booking: Booking) -> bool:
    """Whether the appointment is too close for the patient to change it themselves
    (``CLINIC_MIN_NOTICE``): the clinic may not fill the time any more, so they call."""
    return booking.date - utcnow() < settings.min_notice


class CannotCancel(Exception):  # noqa: N818 - it names the situation, not an error kind
    """The booking was rejected, or its appointment missed: there is nothing to cancel."""

    def __init__(self, booking: Booking) -> None:
        super().__init__(booking.id)
        self.status = booking.status


async def cancel(booking_id: str) -> tuple[Booking | None, bool]:
    """Cancel a pending or confirmed booking and free its slot.

    Returns the booking as it is now (None if there is no such booking), and
    whether this call cancelled it, so that only that call announces it.
    Cancelling twice is harmless: the second call finds it cancelled. A pending
    booking's worker will find it cancelled and skip it. The announcement is
    recorded in the outbox before the booking changes, so it cannot be lost.
    """
    await record_status(booking_id, BookingStatus.CANCELLED)
    cancelled = await bookings.cancel(booking_id)
    current = await bookings.get(booking_id)
    if not cancelled:
        if current is not None and current.status in UNCANCELLABLE:
            raise CannotCancel(current)
        return current, False
    await slots.release(booking_id)
    log.info("booking %s cancelled", booking_id, extra={"booking_id": booking_id})
    count_booking("cancelled")
    return current, True
