"""A patient's rights over their data: a copy of all of it, and its erasure.

Both find the patient by the mailbox their address reaches (case, ``+tags``,
Gmail's dots folded), in every collection and in the parking queue.
"""

from dataclasses import dataclass, field
from typing import Any

from clinic.clock import utcnow
from clinic.domain.cancellation import cancel
from clinic.messages import BookingStatus
from clinic.messaging.parking import parked_about, remove_parked
from clinic.settings import settings
from clinic.store import patients
from clinic.store.email_keys import email_key


async def export(email: str) -> dict[str, Any]:
    """Everything the clinic holds about the patient with this address, as plain data."""
    found = await patients.bookings_of(email_key(email))
    ids = [booking.id for booking in found]
    related = await patients.records_of(ids) if ids else {}
    return {
        "email": email,
        "exportedAt": utcnow().isoformat(),
        "bookings": [
            booking.model_dump(mode="json", exclude={"manage_token_digest", "revision_id"})
            for booking in found
        ],
        **related,
        "parkedMessages": await parked_about(settings.rabbit_url, set(ids)) if ids else [],
    }


@dataclass
class Erasure:
    """What erasing a patient's data changed."""

    bookings: int = 0
    cancelled: list[str] = field(default_factory=list)
    request_digests: int = 0
    parked_messages: int = 0


async def erase(email: str) -> Erasure:
    """Remove the patient's name, email and keys from everything the clinic holds.

    Their upcoming appointments are cancelled first, so their slots are free for
    others; the cancellation is announced, but no email goes out, for there is no
    address left to send it to. The bookings stay, naming no one.
    """
    found = await patients.bookings_of(email_key(email))
    ids = [booking.id for booking in found]
    erasure = Erasure()
    if not ids:
        return erasure
    now = utcnow()
    for booking in found:
        upcoming = booking.date > now
        if upcoming and booking.status in {BookingStatus.PENDING, BookingStatus.CONFIRMED}:
            _, by_this_call = await cancel(booking.id)
            if by_this_call:
                erasure.cancelled.append(booking.id)
    erasure.bookings, erasure.request_digests = await patients.remove_patient_data(ids)
    erasure.parked_messages = await remove_parked(settings.rabbit_url, set(ids))
    return erasure
