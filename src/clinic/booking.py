"""The clinic's booking decisions: confirm or reject, exactly once."""

import logging
from datetime import datetime

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from clinic.messages import BookingStatus, BookingStatusChanged, RejectionCode
from clinic.models import Booking, SlotClaim, utcnow
from clinic.topology import status_publisher

log = logging.getLogger("clinic.booking")

REASONS = {
    RejectionCode.DATE_IN_PAST: "The appointment date is in the past.",
    RejectionCode.SLOT_TAKEN: "Another patient already holds this date and time.",
    RejectionCode.PROCESSING_FAILED: "processing failed",
}


def slot_key(date: datetime) -> str:
    """The id of the slot a booking at ``date`` occupies."""
    return date.isoformat()


async def claim_slot(booking: Booking) -> bool:
    """Hold the booking's slot; False when another booking holds it already.

    The unique ``_id`` makes this atomic, so no two bookings can hold one slot,
    however many workers race; a redelivery finds its own claim and keeps it.
    """
    key = slot_key(booking.date)
    try:
        await SlotClaim(id=key, booking_id=booking.id).insert()
    except DuplicateKeyError:
        holder = await SlotClaim.get(key)
        return holder is not None and holder.booking_id == booking.id
    return True


async def release_slot(booking: Booking) -> None:
    """Give up the booking's slot, if it holds it."""
    await SlotClaim.find_one(
        SlotClaim.id == slot_key(booking.date), SlotClaim.booking_id == booking.id
    ).delete()


async def transition(
    booking_id: str, status: BookingStatus, code: RejectionCode | None = None
) -> Booking | None:
    """Move a pending booking to ``status``; None if it was no longer pending.

    The filter on ``status: pending`` makes the change happen at most once, even
    when two workers handle the same message.
    """
    changes = {
        "status": status,
        "reason": REASONS[code] if code else None,
        "reason_code": code,
        "updated_at": utcnow(),
        "request_published": True,  # a worker has it, so it certainly was published
    }
    raw = await Booking.get_pymongo_collection().find_one_and_update(
        {"_id": booking_id, "status": BookingStatus.PENDING},
        {"$set": changes},
        return_document=ReturnDocument.AFTER,
    )
    return None if raw is None else Booking.model_validate(raw)


async def decide(booking: Booking) -> Booking:
    """Confirm ``booking`` if its time is free and in the future, else reject it."""
    claimed = False
    if booking.date <= utcnow():
        outcome, code = BookingStatus.REJECTED, RejectionCode.DATE_IN_PAST
    elif claimed := await claim_slot(booking):
        outcome, code = BookingStatus.CONFIRMED, None
    else:
        outcome, code = BookingStatus.REJECTED, RejectionCode.SLOT_TAKEN
    decided = await transition(booking.id, outcome, code)
    if decided is not None:
        log.info("booking %s %s", booking.id, outcome.value, extra={"booking_id": booking.id})
        return decided
    # Someone else decided first (a duplicate delivery): keep their outcome.
    current = await Booking.get(booking.id)
    if current is None:
        raise LookupError(f"booking {booking.id} vanished")
    if claimed and current.status is not BookingStatus.CONFIRMED:
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
    event = BookingStatusChanged(
        booking_id=booking.id,
        status=booking.status,
        patient_name=booking.patient_name,
        patient_email=booking.patient_email,
        date=booking.date,
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
        {"_id": booking.id}, {"$set": {"notified_status": booking.status}}
    )
