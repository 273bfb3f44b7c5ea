"""A missed appointment: staff mark a confirmed booking whose time has come as a no-show."""

import logging

from clinic.clock import utcnow
from clinic.domain.announcements import record_status
from clinic.messages import BookingStatus
from clinic.metrics import count_booking
from clinic.store import bookings
from clinic.store.documents import Booking

log = logging.getLogger("clinic.booking")


class NotYetMissed(Exception):  # noqa: N818 - it names the situation, not an error kind
    """Only a confirmed appointment whose time has come can be missed."""


async def mark_no_show(booking_id: str) -> tuple[Booking | None, bool]:
    """Record that the patient did not come to a confirmed appointment whose time has come.

    Returns the booking as it is now (None if there is none), and whether this call
    marked it, so that only that call announces it; marking twice is harmless.
    Raises ``NotYetMissed`` for any other booking. The announcement is recorded in
    the outbox first, as a cancellation's is.
    """
    await record_status(booking_id, BookingStatus.NO_SHOW)
    marked = await bookings.mark_no_show(booking_id, utcnow())
    current = await bookings.get(booking_id)
    if current is None or (not marked and current.status is BookingStatus.NO_SHOW):
        return current, False
    if not marked:
        raise NotYetMissed(booking_id)
    log.info("booking %s marked a no-show", booking_id, extra={"booking_id": booking_id})
    count_booking("no_show")
    return current, True
