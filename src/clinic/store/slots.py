"""A doctor's appointment slots: each held by at most one booking, and each booking holds one.

A slot is a ``slot_claims`` document whose ``_id`` is ``<doctor id>|<start>``;
its unique ``_id`` is what makes a double-booked doctor impossible.
"""

from datetime import datetime

from clinic.store.batching import inserts_of
from clinic.store.documents import SlotClaim

_claim_inserts = inserts_of(SlotClaim)


def slot_key(doctor_id: str, start: datetime) -> str:
    """The id of the slot a booking at ``start`` with ``doctor_id`` occupies."""
    return f"{doctor_id}|{start.isoformat()}"


async def claim(doctor_id: str, start: datetime, booking_id: str) -> SlotClaim | None:
    """Hold the doctor's slot for the booking: the claim it now holds, or None if it is taken.

    The unique ``_id`` makes this atomic, so no two bookings can hold one slot,
    however many workers race. A booking never holds two slots either (its id is
    unique among the claims): a redelivery gets back the claim it already holds,
    which may be another doctor's.
    """
    held = SlotClaim(
        id=slot_key(doctor_id, start), doctor_id=doctor_id, start=start, booking_id=booking_id
    )
    if await _claim_inserts.run(held):
        return held
    # Only here, off the common path: the slot is taken, or this booking holds one.
    return await SlotClaim.find_one(SlotClaim.booking_id == booking_id)


async def release(booking_id: str) -> None:
    """Give up whatever slot the booking holds."""
    await SlotClaim.find(SlotClaim.booking_id == booking_id).delete()


async def held_between(doctor_id: str, start: datetime, end: datetime) -> set[datetime]:
    """The start times of the doctor's held slots in ``[start, end)``."""
    found = SlotClaim.find(
        SlotClaim.doctor_id == doctor_id, SlotClaim.start >= start, SlotClaim.start < end
    )
    return {held.start for held in await found.to_list()}
