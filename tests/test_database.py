"""What the API does to the database when it starts, for deployments of earlier versions."""

from pymongo import ASCENDING, AsyncMongoClient

from clinic.store.database import connect_database, drop_obsolete_indexes
from clinic.store.documents import Booking, OutboxRecord, SlotClaim


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
    # The relay's, partial on $type, which SecantusDB could serve only by walking them whole.
    outbox = OutboxRecord.get_pymongo_collection()
    for collection, field, name in (
        (bookings, "request_due_at", "request_due"),
        (outbox, "due_at", "due"),
    ):
        await collection.create_index(
            [(field, ASCENDING)], name=name, partialFilterExpression={field: {"$type": "date"}}
        )

    await drop_obsolete_indexes(clean_db)
    await drop_obsolete_indexes(clean_db)  # nothing left to drop: no error

    left = await bookings.index_information()
    assert not {"doctor_schedule", "unannounced", "relay_unpublished", "request_due"} & left.keys()
    assert {"list_all", "list_by_status", "list_by_doctor", "due_requests"} <= left.keys()
    assert set(await outbox.index_information()) == {"_id_", "due_messages", "expiry"}
    claim_indexes = await claims.index_information()
    assert "by_booking" not in claim_indexes
    assert "one_slot_per_booking" in claim_indexes


async def test_writes_wait_for_a_majority_and_reads_are_retried(
    clean_db: AsyncMongoClient[dict[str, object]],
) -> None:
    """On a replica set, a 202's booking must survive losing the primary: the clinic's
    own client asks for majority writes, whatever the server's default."""
    client = await connect_database(create_indexes=False)
    try:
        for model in (Booking, SlotClaim):
            assert model.get_pymongo_collection().write_concern.document == {"w": "majority"}
        assert client.options.retry_reads
    finally:
        await client.close()
