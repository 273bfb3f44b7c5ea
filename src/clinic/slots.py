"""A doctor's appointment slots: each held by at most one booking, and each booking holds one.

A slot is a ``slot_claims`` document whose ``_id`` is ``<doctor id>|<start>``;
its unique ``_id`` is what makes a double-booked doctor impossible.
"""

from datetime import datetime

from clinic.batching import inserts_of
from clinic.models import Booking, SlotClaim

_claim_inserts = inserts_of(SlotClaim)


def slot_key(doctor_id: str, start: datetime) -> str:
    """The id of the slot a booking at ``start`` with ``doctor_id`` occupies."""
    return f"{doctor_id}|{start.isoformat()}"


async def claim_slot(doctor_id: str, booking: Booking) -> SlotClaim | None:
    """Hold the doctor's slot for ``booking``: the claim it now holds, or None if the slot is taken.

    The unique ``_id`` makes this atomic, so no two bookings can hold one slot,
    however many workers race. A booking never holds two slots either (its id is
    unique among the claims): a redelivery gets back the claim it already holds,
    which may be another doctor's.
    """
    claim = SlotClaim(
        id=slot_key(doctor_id, booking.date),
        doctor_id=doctor_id,
        start=booking.date,
        booking_id=booking.id,
    )
    if await _claim_inserts.run(claim):
        return claim
    # Only here, off the common path: the slot is taken, or this booking holds one.
    return await SlotClaim.find_one(SlotClaim.booking_id == booking.id)


async def release_slot_of(booking_id: str) -> None:
    """Give up whatever slot the booking holds."""
    await SlotClaim.find(SlotClaim.booking_id == booking_id).delete()
