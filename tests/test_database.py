"""What the API does to the database when it starts, for deployments of earlier versions."""

from pymongo import ASCENDING, AsyncMongoClient

from clinic.store.database import drop_obsolete_indexes
from clinic.store.documents import Booking, SlotClaim


async def test_indexes_of_earlier_versions_are_dropped_and_ours_kept(
    clean_db: AsyncMongoClient[dict[str, object]],
) -> None:
    bookings = Booking.get_pymongo_collection()
    claims = SlotClaim.get_pymongo_collection()
    await bookings.create_index(
        [("doctor_id", ASCENDING), ("date", ASCENDING)], name="doctor_schedule"
    )
    await bookings.create_index([("announce_after", ASCENDING)], name="unannounced")
    await claims.create_index([("booking_id", ASCENDING)], name="by_booking")

    await drop_obsolete_indexes(clean_db)
    await drop_obsolete_indexes(clean_db)  # nothing left to drop: no error

    left = await bookings.index_information()
    assert not {"doctor_schedule", "unannounced", "relay_unpublished"} & left.keys()
    assert {"list_all", "list_by_status", "list_by_doctor"} <= left.keys()
    claim_indexes = await claims.index_information()
    assert "by_booking" not in claim_indexes
    assert "one_slot_per_booking" in claim_indexes
