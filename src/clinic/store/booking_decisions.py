"""A booking's decision, written at most once, with the decisions that arrive with it.

Concurrent decisions share one command (see ``clinic.store.batching``), and those
setting the same fields (the same outcome, with the same doctor) one statement.
"""

from uuid import uuid4

from pymongo import UpdateMany

from clinic.clock import utcnow
from clinic.messages import BookingStatus
from clinic.store.batching import Batched
from clinic.store.documents import Booking

Move = tuple[str, dict[str, object]]
"""A booking id, and the fields its move sets."""
Stored = dict[str, object]
"""The fields a move set: its own, with ``updated_at`` and the ``decision_id`` that won."""


async def move_if_pending(booking_id: str, changes: dict[str, object]) -> Stored | None:
    """Set ``changes`` on the booking if it is still pending; the fields set, or None if
    another move (a duplicate delivery, a cancellation) came first.

    The filter on ``status: pending`` makes a booking move at most once, even when
    two workers handle the same message. Each write gets a ``decision_id`` of its
    own: when moves race, the stored one names the winner.
    """
    return await _moves.run((booking_id, changes))


async def _move_all(moves: list[Move]) -> list[Stored | BaseException | None]:
    # Moves setting the same fields (the same outcome, with the same doctor) share one
    # update_many: the database pays mostly per statement. Not findAndModify: the
    # callers know their bookings already.
    now = utcnow()
    stored: list[Stored | None] = [None] * len(moves)
    groups: dict[tuple[tuple[str, object], ...], tuple[Stored, list[str]]] = {}
    seen: set[str] = set()
    for index, (booking_id, changes) in enumerate(moves):
        if booking_id in seen:
            continue  # a second delivery in the same batch: the first one's write decides
        seen.add(booking_id)
        same = tuple(sorted(changes.items()))
        if same not in groups:
            groups[same] = ({**changes, "updated_at": now, "decision_id": uuid4().hex}, [])
        fields, ids = groups[same]
        ids.append(booking_id)
        stored[index] = fields
    collection = Booking.get_pymongo_collection()
    result = await collection.bulk_write(
        [
            UpdateMany(
                {"_id": {"$in": ids}, "status": BookingStatus.PENDING},
                {"$set": fields, "$inc": {"revision": 1}},
            )
            for fields, ids in groups.values()
        ],
        ordered=False,
    )
    if result.modified_count == len(seen):
        return list(stored)
    # Some lost (to a duplicate delivery, a cancellation): each booking keeps the
    # decision id of the move that won.
    found = collection.find({"_id": {"$in": list(seen)}}, {"decision_id": True})
    winners = {raw["_id"]: raw.get("decision_id") for raw in await found.to_list()}
    return [
        fields if fields is not None and winners.get(booking_id) == fields["decision_id"] else None
        for (booking_id, _), fields in zip(moves, stored, strict=True)
    ]


_moves: Batched[Move, Stored | None] = Batched(_move_all)
