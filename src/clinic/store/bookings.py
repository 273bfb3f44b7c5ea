"""Bookings in MongoDB: stored, read and moved on, with concurrent calls sharing one command.

Each caller still waits for its own result (a 202 always means stored); it just
shares the round trip with the calls that arrived during the previous one (see
``clinic.store.batching``).
"""

from datetime import datetime

from pymongo import ASCENDING

from clinic.clock import later, utcnow
from clinic.messages import BookingStatus
from clinic.store.batching import inserts_of, reads_of
from clinic.store.documents import Booking, PendingMove, due_by

_inserts = inserts_of(Booking)
_reads = reads_of(Booking)


async def insert(booking: Booking) -> bool:
    """Store a new booking: True once stored, False if its id is taken."""
    return await _inserts.run(booking)


async def get(booking_id: str) -> Booking | None:
    """The booking with this id, or None."""
    return await _reads.run(booking_id)


async def upcoming_dates(patient_email_key: str, limit: int) -> list[datetime]:
    """When the patient's pending and confirmed appointments still to come are, soonest first.

    At most ``limit`` of them: enough to tell whether a limit is reached.
    """
    cursor = (
        Booking.get_pymongo_collection()
        .find(
            {
                "patient_email_key": patient_email_key,
                "status": {"$in": [BookingStatus.PENDING.value, BookingStatus.CONFIRMED.value]},
                "date": {"$gt": utcnow()},
            },
            {"date": True, "_id": False},
        )
        .sort("date", ASCENDING)
        .limit(limit)
    )
    return [document["date"] async for document in cursor]


async def count_pending(up_to: int) -> int:
    """How many bookings wait for a decision, counted up to ``up_to`` and no further."""
    return await Booking.get_pymongo_collection().count_documents(
        {"status": BookingStatus.PENDING.value}, limit=up_to
    )


async def replace_manage_token(booking_id: str, token_digest: str) -> None:
    """Store a new manage token's digest for the booking: the old token opens it no more."""
    await Booking.get_pymongo_collection().update_one(
        {"_id": booking_id}, {"$set": {"manage_token_digest": token_digest}}
    )


async def cancel(booking_id: str) -> bool:
    """Mark a pending or confirmed booking cancelled; whether this call cancelled it."""
    result = await Booking.get_pymongo_collection().update_one(
        {"_id": booking_id, "status": {"$in": [BookingStatus.PENDING, BookingStatus.CONFIRMED]}},
        {
            "$set": {
                "status": BookingStatus.CANCELLED,
                "reason": None,
                "reason_code": None,
                "updated_at": utcnow(),
                "request_due_at": None,  # no worker is to decide it any more
                "pending_move": None,
            },
            "$inc": {"revision": 1},
        },
    )
    return bool(result.modified_count)


async def confirmed_unrevised(limit: int) -> list[Booking]:
    """Up to ``limit`` confirmed bookings stored before bookings had a revision."""
    found = Booking.get_pymongo_collection().find(
        {"status": BookingStatus.CONFIRMED, "revision": {"$exists": False}}, limit=limit
    )
    return [Booking.model_validate(raw) async for raw in found]


async def mark_revised(booking_ids: list[str]) -> None:
    """Give bookings stored before revisions existed their first one, 0."""
    await Booking.get_pymongo_collection().update_many(
        {"_id": {"$in": booking_ids}, "revision": {"$exists": False}}, {"$set": {"revision": 0}}
    )


async def add_move(booking: Booking, move: PendingMove, due_at: datetime, ticket: str) -> bool:
    """Store a move request on a confirmed booking with none pending, as read at its
    revision; whether it was stored. Its request is due like a new booking's, and
    handed over with ``ticket``."""
    result = await Booking.get_pymongo_collection().update_one(
        {
            "_id": booking.id,
            "status": BookingStatus.CONFIRMED,
            "revision": booking.revision,
            "pending_move": None,
        },
        {
            "$set": {
                "pending_move": move.model_dump(),
                "request_due_at": due_at,
                "hand_over": ticket,
            }
        },
    )
    return bool(result.modified_count)


async def end_move(booking: Booking, changes: dict[str, object]) -> bool:
    """Set ``changes`` on a confirmed booking whose move, read at its revision, is still
    pending, and close the move; whether this call did (a redelivery's does not)."""
    result = await Booking.get_pymongo_collection().update_one(
        {
            "_id": booking.id,
            "status": BookingStatus.CONFIRMED,
            "revision": booking.revision,
            "pending_move": {"$ne": None},
        },
        {
            "$set": {**changes, "pending_move": None, "request_due_at": None},
            "$inc": {"revision": 1},
        },
    )
    return bool(result.modified_count)


async def mark_no_show(booking_id: str, now: datetime) -> bool:
    """Mark a confirmed booking whose time has come a no-show; whether this call marked it."""
    result = await Booking.get_pymongo_collection().update_one(
        {"_id": booking_id, "status": BookingStatus.CONFIRMED, "date": {"$lte": now}},
        {
            "$set": {"status": BookingStatus.NO_SHOW, "updated_at": utcnow()},
            "$inc": {"revision": 1},
        },
    )
    return bool(result.modified_count)


async def due_requests(now: datetime, limit: int) -> list[Booking]:
    """The bookings whose request was due by ``now``, longest overdue first: at most ``limit``.

    One read for the relay's whole scan. A write that picked them one at a time
    (``findAndModify``) costs SecantusDB a scan of the collection each.
    """
    found = (
        Booking.get_pymongo_collection()
        .find({"request_due_at": due_by(now)})
        .sort("request_due_at", ASCENDING)
        .limit(limit)
    )
    return [Booking.model_validate(raw) async for raw in found]


async def lease_request(booking_id: str, now: datetime, lease: float) -> datetime | None:
    """Make the booking's request, due by ``now``, due again ``lease`` seconds later: that
    time, or None if another relay has it or it is settled. The lease keeps other relays
    off it while this one sends the request."""
    leased_until = later(lease, now)  # as stored, so that ``settle_request`` finds it again
    result = await Booking.get_pymongo_collection().update_one(
        {"_id": booking_id, "request_due_at": due_by(now)},
        {"$set": {"request_due_at": leased_until}},
    )
    return leased_until if result.modified_count else None


async def oldest_unsettled_request(scan: int) -> datetime | None:
    """When the oldest of the first ``scan`` bookings whose request may not have left was made.

    None when no request is due. Bounded like ``outbox.oldest_unsent_recorded_at``.
    """
    found = (
        Booking.get_pymongo_collection()
        .find({"request_due_at": due_by()}, {"created_at": True, "_id": False})
        .sort("request_due_at", ASCENDING)
        .limit(scan)
    )
    return min([raw["created_at"] async for raw in found], default=None)


async def clear_hand_over(booking_id: str, ticket: str) -> None:
    """Forget the booking's hand-over ``ticket``: the request is the relay's to send."""
    await Booking.get_pymongo_collection().update_one(
        {"_id": booking_id, "hand_over": ticket}, {"$set": {"hand_over": None}}
    )


async def settle_request(booking_id: str, leased_until: datetime) -> None:
    """Record that the booking's request, leased until ``leased_until``, needs no more
    sending; unless the booking has a request due since (a move asked for meanwhile)."""
    await Booking.get_pymongo_collection().update_one(
        {"_id": booking_id, "request_due_at": leased_until}, {"$set": {"request_due_at": None}}
    )


async def settle_requests(booking_ids: list[str], now: datetime) -> None:
    """Record that these bookings' requests, due by ``now``, need no more sending: in one
    write. A request due again since (leased by another relay, or a move's) stays due."""
    if booking_ids:
        await Booking.get_pymongo_collection().update_many(
            {"_id": {"$in": booking_ids}, "request_due_at": due_by(now)},
            {"$set": {"request_due_at": None}},
        )


async def pending_between(doctor_id: str, start: datetime, end: datetime) -> list[datetime]:
    """The times of the doctor's pending bookings in ``[start, end)``."""
    # The day's bookings, every doctor's, through list_by_date: a clinic's day is
    # small, and its doctor and status are checked here. A read that names its index,
    # or adds them to the range, SecantusDB serves by walking every booking.
    found = Booking.get_pymongo_collection().find(
        {"date": {"$gte": start, "$lt": end}},
        {"date": True, "doctor_id": True, "status": True, "_id": False},
    )
    return [
        raw["date"]
        async for raw in found
        if raw.get("doctor_id") == doctor_id and raw.get("status") == BookingStatus.PENDING
    ]
