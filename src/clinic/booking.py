"""The clinic's booking decisions: confirm or reject, exactly once."""

import logging
from uuid import uuid4

from pymongo import UpdateOne

from clinic.announcements import announce
from clinic.batching import Batched, reads_of
from clinic.messages import BookingStatus, RejectionCode
from clinic.models import Booking, Doctor, outbox_deadline, utcnow
from clinic.scheduling import slot_problem
from clinic.slots import claim_slot, release_slot_of

log = logging.getLogger("clinic.booking")

REASONS = {
    RejectionCode.DATE_IN_PAST: "The appointment date is in the past.",
    RejectionCode.OUTSIDE_WORKING_HOURS: "No doctor works at this time.",
    RejectionCode.NOT_ON_SLOT_BOUNDARY: "Appointments start on the hour or at slot times only.",
    RejectionCode.DOCTOR_UNAVAILABLE: "The doctor no longer takes appointments.",
    RejectionCode.SLOT_TAKEN: "Another patient already holds this appointment time.",
    RejectionCode.PROCESSING_FAILED: "processing failed",
}
# When no doctor could take a booking, the most telling reason wins.
_PRECEDENCE = [
    RejectionCode.SLOT_TAKEN,
    RejectionCode.NOT_ON_SLOT_BOUNDARY,
    RejectionCode.OUTSIDE_WORKING_HOURS,
    RejectionCode.DOCTOR_UNAVAILABLE,
]


find_booking = reads_of(Booking)
"""``await find_booking.run(id)``: the booking, read together with others asked for at once."""


async def _doctors_for(wanted: list[str | None]) -> list[list[Doctor] | BaseException]:
    # A clinic has tens of doctors: one read of them all answers every booking waiting.
    doctors = await Doctor.find_all().sort("_id").to_list()
    by_id = {doctor.id: doctor for doctor in doctors}
    active = [doctor for doctor in doctors if doctor.active]
    answers: list[list[Doctor] | BaseException] = []
    for doctor_id in wanted:
        if doctor_id is None:
            answers.append(active)
        else:
            answers.append([by_id[doctor_id]] if doctor_id in by_id else [])
    return answers


_doctors: Batched[str | None, list[Doctor]] = Batched(_doctors_for)


async def candidate_doctors(booking: Booking) -> list[Doctor]:
    """Who could see this patient: the chosen doctor, else every active doctor by id."""
    return await _doctors.run(booking.doctor_id)


async def transition(
    booking_id: str,
    status: BookingStatus,
    code: RejectionCode | None = None,
    doctor: Doctor | None = None,
    *,
    relay_announces: bool = False,
) -> dict[str, object] | None:
    """Move a pending booking to ``status``: the fields it changed, or None if it was not pending.

    The filter on ``status: pending`` makes the change happen at most once, even
    when two workers handle the same message. The worker announces the change
    before it acks the request, so until then the request message itself is the
    outbox: a crash redelivers it and the change is announced then. Only with
    ``relay_announces`` (no message will come back) is the outbox relay asked to
    announce it if nobody has after a grace period.
    """
    changes: dict[str, object] = {
        "status": status,
        "reason": REASONS[code] if code else None,
        "reason_code": code,
        "updated_at": utcnow(),
        "request_published": True,  # a worker has it, so it certainly was published
    }
    if relay_announces:
        changes["announce_after"] = outbox_deadline()
    if doctor:
        changes |= {"doctor_id": doctor.id, "doctor_name": doctor.name}
    changes["decision_id"] = uuid4().hex
    return changes if await _transitions.run((booking_id, changes)) else None


Move = tuple[str, dict[str, object]]
"""A booking id, and the fields its transition sets."""


async def _apply_transitions(moves: list[Move]) -> list[bool | BaseException]:
    """Make each move of a still pending booking, in one bulk write; whether each one won.

    A plain update, not findAndModify: the caller knows the booking already, and
    findAndModify cost about 15 times as much on the database (see the README).
    """
    collection = Booking.get_pymongo_collection()
    result = await collection.bulk_write(
        [
            UpdateOne({"_id": booking_id, "status": BookingStatus.PENDING}, {"$set": changes})
            for booking_id, changes in moves
        ],
        ordered=False,
    )
    if result.modified_count == len(moves):
        return [True] * len(moves)
    # Some lost (to a duplicate delivery, a cancellation): the booking keeps the
    # decision id of the move that won.
    booking_ids = [booking_id for booking_id, _ in moves]
    stored = collection.find({"_id": {"$in": booking_ids}}, {"decision_id": True})
    winners = {raw["_id"]: raw.get("decision_id") for raw in await stored.to_list()}
    return [winners.get(booking_id) == changes["decision_id"] for booking_id, changes in moves]


_transitions: Batched[Move, bool] = Batched(_apply_transitions)


async def _place(booking: Booking) -> tuple[Doctor | None, RejectionCode | None]:
    """The doctor whose slot the booking now holds, or why none could take it."""
    if booking.date <= utcnow():
        return None, RejectionCode.DATE_IN_PAST
    problems: set[RejectionCode] = set()
    for doctor in await candidate_doctors(booking):
        if problem := slot_problem(doctor, booking.date):
            problems.add(problem)
        elif (held := await claim_slot(doctor.id, booking)) is None:
            problems.add(RejectionCode.SLOT_TAKEN)
        elif held.doctor_id == doctor.id:
            return doctor, None
        elif (earlier := await Doctor.get(held.doctor_id)) is not None:
            return earlier, None  # a redelivery keeps the slot it already holds
    if not problems:  # no such doctor, or no doctors at all
        unknown = booking.doctor_id is not None
        return (
            None,
            RejectionCode.DOCTOR_UNAVAILABLE if unknown else RejectionCode.OUTSIDE_WORKING_HOURS,
        )
    return None, next(code for code in _PRECEDENCE if code in problems)


async def decide(booking: Booking) -> Booking:
    """Confirm ``booking`` in a free slot of its doctor (or of any doctor), else reject it."""
    doctor, code = await _place(booking)
    outcome = BookingStatus.REJECTED if code else BookingStatus.CONFIRMED
    changes = await transition(booking.id, outcome, code, doctor)
    if changes is not None:
        log.info("booking %s %s", booking.id, outcome.value, extra={"booking_id": booking.id})
        if code is not None and code is not RejectionCode.DATE_IN_PAST:
            # A redelivery may hold a slot its doctor can no longer give (deactivated).
            await release_slot_of(booking.id)
        decided: Booking = booking.model_copy(update=changes)
        return decided
    # Someone else decided first (a duplicate delivery, a cancellation): keep that.
    current = await Booking.get(booking.id)
    if current is None:
        raise LookupError(f"booking {booking.id} vanished")
    if doctor and current.status is not BookingStatus.CONFIRMED:
        await release_slot_of(booking.id)
    return current


async def give_up(booking_id: str) -> None:
    """After the last retry: reject the booking as "processing failed" and tell the patient.

    A booking decided already, whose announcement is what kept failing, is left to
    the outbox relay: its request message is about to be parked.
    """
    failed = RejectionCode.PROCESSING_FAILED
    if await transition(booking_id, BookingStatus.REJECTED, failed, relay_announces=True):
        rejected = await Booking.get(booking_id)
        if rejected is not None:
            await announce(rejected)
        return
    await Booking.get_pymongo_collection().update_one(
        {"_id": booking_id, "status": {"$ne": BookingStatus.PENDING}, "announce_after": None},
        {"$set": {"announce_after": outbox_deadline()}},
    )


class CannotCancel(Exception):  # noqa: N818 - it names the situation, not an error kind
    """The booking was rejected: there is nothing to cancel."""


async def cancel(booking_id: str) -> Booking | None:
    """Cancel a pending or confirmed booking and free its slot; None if there is no such booking.

    Cancelling twice is harmless: the second call finds it cancelled. A pending
    booking's worker will find it cancelled and skip it.
    """
    result = await Booking.get_pymongo_collection().update_one(
        {"_id": booking_id, "status": {"$in": [BookingStatus.PENDING, BookingStatus.CONFIRMED]}},
        {
            "$set": {
                "status": BookingStatus.CANCELLED,
                "reason": None,
                "reason_code": None,
                "updated_at": utcnow(),
                "announce_after": outbox_deadline(),
            }
        },
    )
    current = await Booking.get(booking_id)
    if not result.modified_count:
        if current is not None and current.status is BookingStatus.REJECTED:
            raise CannotCancel(booking_id)
        return current
    await release_slot_of(booking_id)
    log.info("booking %s cancelled", booking_id, extra={"booking_id": booking_id})
    return current
