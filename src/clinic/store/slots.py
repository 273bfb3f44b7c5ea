"""A doctor's appointment slots: each held by at most one booking, and each booking holds one.

A slot is a ``slot_claims`` document whose ``_id`` is ``<doctor id>|<start>``;
its unique ``_id`` is what makes a double-booked doctor impossible.
"""

from datetime import datetime

from clinic.store.batching import inserts_of
from clinic.store.documents import SlotClaim

_claim_inserts = inserts_of(SlotClaim)

MOVE_HOLDER = "/move-"
"""What follows the booking's id in the holder of a slot held for its move."""


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
    """Give up whatever slot the booking holds, and any held for a move of it."""
    claims = SlotClaim.get_pymongo_collection()
    await claims.delete_many({"booking_id": booking_id})
    # Every holder move_holder names, as a range of one_slot_per_booking's keys: a
    # $regex, or an $or of the two, SecantusDB serves by scanning every slot ever held.
    await claims.delete_many({"booking_id": _starting_with(f"{booking_id}{MOVE_HOLDER}")})


def _starting_with(prefix: str) -> dict[str, str]:
    """The condition of a string that starts with ``prefix``, as a range."""
    return {"$gte": prefix, "$lt": prefix[:-1] + chr(ord(prefix[-1]) + 1)}


def move_holder(booking_id: str, revision: int) -> str:
    """Whom a move's new slot is held for until the move is done: the booking may not
    hold two slots under its own id, and for a moment it holds two."""
    return f"{booking_id}{MOVE_HOLDER}{revision}"


async def claim_for_move(doctor_id: str, start: datetime, booking_id: str, holder: str) -> bool:
    """Hold the doctor's slot for a booking's move, under ``holder``; whether it is ours now.

    A redelivery finds the slot held already, under ``holder`` or (the move carried
    on past ``hand_over_move``) under the booking's own id.
    """
    held = SlotClaim(
        id=slot_key(doctor_id, start), doctor_id=doctor_id, start=start, booking_id=holder
    )
    if await _claim_inserts.run(held):
        return True
    ours = {"_id": held.id, "booking_id": {"$in": [holder, booking_id]}}
    return await SlotClaim.get_pymongo_collection().count_documents(ours, limit=1) == 1


async def release_move(holder: str) -> None:
    """Give up the slot held for a move that will not happen."""
    await SlotClaim.get_pymongo_collection().delete_many({"booking_id": holder})


async def hand_over_move(booking_id: str, holder: str, new_slot: str) -> None:
    """Give up the booking's old slot, then hold the new one under its own id.

    In this order, so that the booking never holds two slots under its id (the unique
    index forbids it) and never holds none of the two. Each step can be repeated.
    """
    claims = SlotClaim.get_pymongo_collection()
    await claims.delete_many({"booking_id": booking_id, "_id": {"$ne": new_slot}})
    await claims.update_one(
        {"_id": new_slot, "booking_id": holder}, {"$set": {"booking_id": booking_id}}
    )


async def held_between(doctor_id: str, start: datetime, end: datetime) -> set[datetime]:
    """The start times of the doctor's held slots in ``[start, end)``."""
    # One condition per field, as by_doctor_time's key reads: Beanie's $and of three
    # conditions SecantusDB serves by scanning every slot ever held.
    found = SlotClaim.get_pymongo_collection().find(
        {"doctor_id": doctor_id, "start": {"$gte": start, "$lt": end}},
        {"start": True, "_id": False},
    )
    return {raw["start"] async for raw in found}
