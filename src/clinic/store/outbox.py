"""The outbox's records: what must leave the clinic, and whether it has.

Every message whose loss a patient would notice is recorded here, keyed by the
message: a status change no request message will bring back, each email, and each
reminder (a booking request's record is the booking's ``request_due_at``, and its
hand-over mark: see ``clinic.domain.hand_overs``). ``mark_sent`` records that a
message left; ``due`` and ``lease`` hand the outbox relay whatever is overdue. See
``clinic.domain.outbox`` for who writes which record and when.
"""

from datetime import datetime

from pymongo import ASCENDING

from clinic.clock import later, utcnow
from clinic.messages import BookingStatus
from clinic.store.batching import Batched, inserts_of, reads_of
from clinic.store.documents import DUE_SINCE, MessageKind, OutboxRecord, due_by


def record_id(kind: MessageKind, booking_id: str, what: str | None = None) -> str:
    """The id of the record of one message: its kind, its booking and, but for requests,
    which of the booking's messages it is (a status, a reminder's revision)."""
    return f"{kind.value}:{booking_id}" if what is None else f"{kind.value}:{booking_id}:{what}"


def new_record(
    kind: MessageKind,
    booking_id: str,
    status: BookingStatus | None,
    leave_within: float | None,
    what: str | None = None,
) -> OutboxRecord:
    """A record of a message that is due to be sent again ``leave_within`` seconds from now.

    With ``leave_within=None`` the record is of a message that has left already.
    ``what`` names the message when its status does not (a reminder's email).
    """
    return OutboxRecord(
        id=record_id(kind, booking_id, what or status),
        kind=kind,
        booking_id=booking_id,
        status=status,
        due_at=None if leave_within is None else later(leave_within),
        sent_at=utcnow() if leave_within is None else None,
    )


def reminder_record(booking_id: str, revision: int, due_at: datetime) -> OutboxRecord:
    """The record of the reminder of a booking's revision, to be announced at ``due_at``."""
    return OutboxRecord(
        id=record_id(MessageKind.REMINDER, booking_id, str(revision)),
        kind=MessageKind.REMINDER,
        booking_id=booking_id,
        revision=revision,
        due_at=due_at,
        # It waits from when it falls due, not from when it was scheduled.
        recorded_at=due_at,
    )


_inserts = inserts_of(OutboxRecord)
_reads = reads_of(OutboxRecord)


async def add(record: OutboxRecord) -> bool:
    """Store a new record: True once stored, False if the message has one already."""
    return await _inserts.run(record)


async def get(record_id: str) -> OutboxRecord | None:
    """The record with this id, or None."""
    return await _reads.run(record_id)


async def mark_sent(record_id: str) -> None:
    """Record that the message left: it is not due any more, and a copy of it is not sent."""
    await _sent_marks.run(record_id)


async def _mark_all_sent(record_ids: list[str]) -> list[BaseException | None]:
    await OutboxRecord.get_pymongo_collection().update_many(
        {"_id": {"$in": record_ids}}, {"$set": {"sent_at": utcnow()}, "$unset": {"due_at": ""}}
    )
    return [None] * len(record_ids)


_sent_marks: Batched[str, None] = Batched(_mark_all_sent)


async def delete(record_id: str) -> None:
    """Forget a record whose message is not to be sent at all."""
    await OutboxRecord.get_pymongo_collection().delete_one({"_id": record_id})


async def due(kind: MessageKind, now: datetime, limit: int) -> list[OutboxRecord]:
    """The unsent records of one kind due by ``now``, longest overdue first: at most ``limit``.

    One read for the relay's whole scan of a kind; ``lease`` then takes each.
    """
    found = (
        OutboxRecord.get_pymongo_collection()
        .find({"kind": kind.value, "due_at": due_by(now)})
        .sort("due_at", ASCENDING)
        .limit(limit)
    )
    return [OutboxRecord.model_validate(raw) async for raw in found]


async def lease(record: OutboxRecord, seconds: float, now: datetime) -> OutboxRecord | None:
    """The record, due again ``seconds`` after ``now``, if it was still due by ``now``; None
    if another relay or sender has it, or it left.

    The lease keeps other relays off it while this one sends it; if this one dies,
    the record is overdue again when the lease ends. An update, not a
    ``findAndModify``: SecantusDB scans the collection for each of those.
    """
    leased_until = later(seconds, now)
    result = await OutboxRecord.get_pymongo_collection().update_one(
        {"_id": record.id, "due_at": due_by(now)},
        {"$set": {"due_at": leased_until}, "$inc": {"attempts": 1}},
    )
    if not result.modified_count:
        return None
    leased: OutboxRecord = record.model_copy(
        update={"due_at": leased_until, "attempts": record.attempts + 1}
    )
    return leased


async def oldest_unsent_recorded_at(scan: int) -> datetime | None:
    """When the oldest of the first ``scan`` unsent records of each kind (in due order) was
    recorded.

    None when every message has left. Bounded: at most ``scan`` small index-ordered
    reads of each kind, however large an outage's backlog.
    """
    times: list[datetime] = []
    for kind in MessageKind:
        found = (
            OutboxRecord.get_pymongo_collection()
            .find(
                {"kind": kind.value, "due_at": due_by()},
                {"recorded_at": True, "due_at": True, "_id": False},
            )
            .sort("due_at", ASCENDING)
            .limit(scan)
        )
        # A record from before recorded_at existed: its due time is the best known.
        times += [raw.get("recorded_at") or raw["due_at"] async for raw in found]
    return min(times, default=None)


async def take_over(record_id: str, lease: float) -> OutboxRecord | None:
    """Lease an unsent record whose lease ran out (its sender died); None if it is not."""
    now = utcnow()
    leased_until = later(lease, now)
    result = await OutboxRecord.get_pymongo_collection().update_one(
        {"_id": record_id, "due_at": {"$gte": DUE_SINCE, "$lt": now}},
        {"$set": {"due_at": leased_until}, "$inc": {"attempts": 1}},
    )
    if not result.modified_count:
        return None
    taken = await get(record_id)
    # Another sender may have taken it over in between: then it is theirs.
    return taken if taken is not None and taken.due_at == leased_until else None


async def release(record_id: str, due_at: datetime | None) -> None:
    """Delete an unsent record while its lease is still ``due_at``, so a retry may send at once."""
    await OutboxRecord.get_pymongo_collection().delete_one(
        {"_id": record_id, "due_at": due_at, "sent_at": None}
    )
