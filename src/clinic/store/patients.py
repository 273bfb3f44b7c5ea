"""A patient's data across the clinic's collections: found by email, exported, removed.

Only bookings hold a patient's name and email. The other collections hold what
points to a booking: slot claims and outbox records by booking id, idempotency
keys by booking id with a digest of the request's body.
"""

from datetime import datetime
from typing import Any

from pymongo import UpdateOne

from clinic.clock import utcnow
from clinic.store.documents import Booking, IdempotencyKey, OutboxRecord, SlotClaim
from clinic.store.email_keys import email_key

_REMOVED: dict[str, Any] = {
    "patient_name": "",
    "patient_email": "",
    "patient_email_key": "",
    "manage_token_digest": None,
}
"""What a booking keeps of its patient once their data is removed: nothing."""


async def bookings_of(patient_email_key: str) -> list[Booking]:
    """Every booking made with an address that reaches this mailbox, oldest first."""
    found = Booking.find(Booking.patient_email_key == patient_email_key)
    return await found.sort("list_key").to_list()


async def records_of(booking_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """What the other collections hold about these bookings, by collection name."""
    where = {"booking_id": {"$in": booking_ids}}
    found: dict[str, list[dict[str, Any]]] = {}
    for document_class in (SlotClaim, OutboxRecord, IdempotencyKey):
        cursor = document_class.get_pymongo_collection().find(where)
        found[document_class.Settings.name] = [document async for document in cursor]
    return found


async def remove_patient_data(booking_ids: list[str]) -> tuple[int, int]:
    """Remove the patient from these bookings: their name, email and manage token, and the
    idempotency keys holding a digest of their requests. How many bookings and keys."""
    keys = await IdempotencyKey.get_pymongo_collection().delete_many(
        {"booking_id": {"$in": booking_ids}}
    )
    changed = await Booking.get_pymongo_collection().update_many(
        {"_id": {"$in": booking_ids}},
        {"$set": {**_REMOVED, "personal_data_removed_at": utcnow()}},
    )
    return changed.modified_count, keys.deleted_count


async def anonymise_appointments_between(
    since: datetime | None, cutoff: datetime, batch: int = 500
) -> int:
    """Remove the patient data of bookings with appointments in [``since``, ``cutoff``).

    At most ``batch`` bookings at a time; how many were changed. ``since`` lets a
    periodic caller read only what became due since its last pass.
    """
    dates: dict[str, datetime] = {"$lt": cutoff}
    if since is not None:
        dates["$gte"] = since
    due = {"date": dates, "personal_data_removed_at": None}
    collection = Booking.get_pymongo_collection()
    ids = [doc["_id"] async for doc in collection.find(due, {"_id": True}).limit(batch)]
    if not ids:
        return 0
    changed, _ = await remove_patient_data(ids)
    return changed


async def key_older_bookings(batch: int = 1000) -> int:
    """Give bookings stored before ``patient_email_key`` existed their key; how many.

    Without it, a patient's older bookings would escape their export and erasure.
    """
    collection = Booking.get_pymongo_collection()
    keyed = 0
    while True:
        older = collection.find({"patient_email_key": None}, {"patient_email": True}).limit(batch)
        updates = [
            UpdateOne(
                {"_id": doc["_id"]},
                {"$set": {"patient_email_key": email_key(doc["patient_email"])}},
            )
            async for doc in older
        ]
        if not updates:
            return keyed
        await collection.bulk_write(updates, ordered=False)
        keyed += len(updates)
