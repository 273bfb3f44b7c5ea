"""The clinic's booking decisions: confirm or reject, exactly once."""

import logging
from datetime import datetime

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from clinic.messages import BookingStatus, BookingStatusChanged, RejectionCode
from clinic.models import Booking, Doctor, SlotClaim, outbox_deadline, utcnow
from clinic.scheduling import slot_problem
from clinic.topology import status_publisher

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


def slot_key(doctor_id: str, start: datetime) -> str:
    """The id of the slot a booking at ``start`` with ``doctor_id`` occupies."""
    return f"{doctor_id}|{start.isoformat()}"


async def claim_slot(doctor_id: str, booking: Booking) -> bool:
    """Hold the doctor's slot for ``booking``; False when another booking holds it.

    The unique ``_id`` makes this atomic, so no two bookings can hold one slot,
    however many workers race; a redelivery finds its own claim and keeps it.
    """
    key = slot_key(doctor_id, booking.date)
    try:
        await SlotClaim(
            id=key, doctor_id=doctor_id, start=booking.date, booking_id=booking.id
        ).insert()
    except DuplicateKeyError:
        holder = await SlotClaim.get(key)
        return holder is not None and holder.booking_id == booking.id
    return True


async def release_slot(booking: Booking) -> None:
    """Give up whatever slot the booking holds."""
    await SlotClaim.find(SlotClaim.booking_id == booking.id).delete()


async def candidate_doctors(booking: Booking) -> list[Doctor]:
    """Who could see this patient: the chosen doctor, else every doctor by id.

    A redelivered booking that already holds a slot keeps that slot's doctor.
    """
    held = await SlotClaim.find_one(SlotClaim.booking_id == booking.id)
    wanted = held.doctor_id if held else booking.doctor_id
    if wanted:
        doctor = await Doctor.get(wanted)
        return [doctor] if doctor else []
    return await Doctor.find(Doctor.active == True).sort("_id").to_list()  # noqa: E712


async def transition(
    booking_id: str,
    status: BookingStatus,
    code: RejectionCode | None = None,
    doctor_id: str | None = None,
) -> Booking | None:
    """Move a pending booking to ``status``; None if it was no longer pending.

    The filter on ``status: pending`` makes the change happen at most once, even
    when two workers handle the same message.
    """
    changes: dict[str, object] = {
        "status": status,
        "reason": REASONS[code] if code else None,
        "reason_code": code,
        "updated_at": utcnow(),
        "request_published": True,  # a worker has it, so it certainly was published
        "announce_after": outbox_deadline(),
    }
    if doctor_id:
        changes["doctor_id"] = doctor_id
    raw = await Booking.get_pymongo_collection().find_one_and_update(
        {"_id": booking_id, "status": BookingStatus.PENDING},
        {"$set": changes},
        return_document=ReturnDocument.AFTER,
    )
    return None if raw is None else Booking.model_validate(raw)


async def _place(booking: Booking) -> tuple[str | None, RejectionCode | None]:
    """The doctor whose slot the booking now holds, or why none could take it."""
    if booking.date <= utcnow():
        return None, RejectionCode.DATE_IN_PAST
    problems: set[RejectionCode] = set()
    for doctor in await candidate_doctors(booking):
        if problem := slot_problem(doctor, booking.date):
            problems.add(problem)
        elif await claim_slot(doctor.id, booking):
            return doctor.id, None
        else:
            problems.add(RejectionCode.SLOT_TAKEN)
    if not problems:  # no such doctor, or no doctors at all
        unknown = booking.doctor_id is not None
        return (
            None,
            RejectionCode.DOCTOR_UNAVAILABLE if unknown else RejectionCode.OUTSIDE_WORKING_HOURS,
        )
    return None, next(code for code in _PRECEDENCE if code in problems)


async def decide(booking: Booking) -> Booking:
    """Confirm ``booking`` in a free slot of its doctor (or of any doctor), else reject it."""
    doctor_id, code = await _place(booking)
    outcome = BookingStatus.REJECTED if code else BookingStatus.CONFIRMED
    decided = await transition(booking.id, outcome, code, doctor_id)
    if decided is not None:
        log.info("booking %s %s", booking.id, outcome.value, extra={"booking_id": booking.id})
        return decided
    # Someone else decided first (a duplicate delivery, a cancellation): keep that.
    current = await Booking.get(booking.id)
    if current is None:
        raise LookupError(f"booking {booking.id} vanished")
    if doctor_id and current.status is not BookingStatus.CONFIRMED:
        await release_slot(booking)
    return current


async def give_up(booking_id: str) -> None:
    """After the last retry: reject the booking as "processing failed" and tell the patient."""
    rejected = await transition(booking_id, BookingStatus.REJECTED, RejectionCode.PROCESSING_FAILED)
    if rejected is not None:
        await announce(rejected)


async def announce(booking: Booking) -> None:
    """Publish the booking's status change once, and record that it went out."""
    if booking.notified_status is booking.status:
        return
    doctor = await Doctor.get(booking.doctor_id) if booking.doctor_id else None
    event = BookingStatusChanged(
        booking_id=booking.id,
        status=booking.status,
        patient_name=booking.patient_name,
        patient_email=booking.patient_email,
        date=booking.date,
        doctor_id=booking.doctor_id,
        doctor_name=doctor.name if doctor else None,
        reason=booking.reason,
        reason_code=booking.reason_code,
        occurred_at=booking.updated_at,
    )
    # The message id names the status change, so consumers can tell a republished
    # event (after a crash before the record below) from a new one.
    await status_publisher.publish(
        event, correlation_id=booking.id, message_id=f"{booking.id}:{booking.status.value}"
    )
    await Booking.get_pymongo_collection().update_one(
        {"_id": booking.id, "status": booking.status},
        {"$set": {"notified_status": booking.status, "announce_after": None}},
    )


class CannotCancel(Exception):  # noqa: N818 - it names the situation, not an error kind
    """The booking was rejected: there is nothing to cancel."""


async def cancel(booking_id: str) -> Booking | None:
    """Cancel a pending or confirmed booking and free its slot; None if there is no such booking.

    Cancelling twice is harmless: the second call finds it cancelled. A pending
    booking's worker will find it cancelled and skip it.
    """
    raw = await Booking.get_pymongo_collection().find_one_and_update(
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
        return_document=ReturnDocument.AFTER,
    )
    if raw is None:
        current = await Booking.get(booking_id)
        if current is not None and current.status is BookingStatus.REJECTED:
            raise CannotCancel(booking_id)
        return current
    cancelled: Booking = Booking.model_validate(raw)
    await release_slot(cancelled)
    log.info("booking %s cancelled", booking_id, extra={"booking_id": booking_id})
    return cancelled
