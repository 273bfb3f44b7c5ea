"""The clinic's booking decisions: confirm or reject, exactly once."""

import logging

from clinic.clock import utcnow
from clinic.domain.announcements import announce_recorded, record_status
from clinic.domain.moves import give_up_move
from clinic.domain.scheduling import slot_problem
from clinic.messages import BookingStatus, RejectionCode
from clinic.messaging.broker import Publishers
from clinic.metrics import count_booking
from clinic.store import booking_decisions, bookings, doctors, slots
from clinic.store.documents import Booking, Doctor

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


async def candidate_doctors(doctor_id: str | None) -> list[Doctor]:
    """Who could see the patient: the chosen doctor, else every active doctor by id."""
    return candidates_among(await doctors.everyone(), doctor_id)


def candidates_among(everyone: list[Doctor], doctor_id: str | None) -> list[Doctor]:
    """Of ``everyone``, the chosen doctor, else every active doctor."""
    if doctor_id is None:
        return [doctor for doctor in everyone if doctor.active]
    return [doctor for doctor in everyone if doctor.id == doctor_id]


async def transition(
    booking_id: str,
    status: BookingStatus,
    code: RejectionCode | None = None,
    doctor: Doctor | None = None,
) -> dict[str, object] | None:
    """Move a pending booking to ``status``: the fields it changed; None if it was not pending."""
    changes: dict[str, object] = {
        "status": status,
        "reason": REASONS[code] if code else None,
        "reason_code": code,
        "request_due_at": None,  # a worker had the request: it needs no more sending
    }
    if doctor:
        changes |= {"doctor_id": doctor.id, "doctor_name": doctor.name}
    return await booking_decisions.move_if_pending(booking_id, changes)


async def _place(booking: Booking) -> tuple[Doctor | None, RejectionCode | None]:
    """The doctor whose slot the booking now holds, or why none could take it."""
    if booking.date <= utcnow():
        return None, RejectionCode.DATE_IN_PAST
    problems: set[RejectionCode] = set()
    for doctor in await candidate_doctors(booking.doctor_id):
        if problem := slot_problem(doctor, booking.date):
            problems.add(problem)
        elif (held := await slots.claim(doctor.id, booking.date, booking.id)) is None:
            problems.add(RejectionCode.SLOT_TAKEN)
        elif held.doctor_id == doctor.id:
            return doctor, None
        elif (earlier := await doctors.get(held.doctor_id)) is not None:
            return earlier, None  # a redelivery keeps the slot it already holds
    if not problems:  # no such doctor, or no doctors at all
        unknown = booking.doctor_id is not None
        return (
            None,
            RejectionCode.DOCTOR_UNAVAILABLE if unknown else RejectionCode.OUTSIDE_WORKING_HOURS,
        )
    return None, most_telling(problems)


def most_telling(problems: set[RejectionCode]) -> RejectionCode:
    """Of the reasons the doctors could not take a booking, the one to tell the patient."""
    return next(code for code in _PRECEDENCE if code in problems)


async def decide(booking: Booking) -> Booking:
    """Confirm ``booking`` in a free slot of its doctor (or of any doctor), else reject it.

    The caller announces the outcome before it acknowledges the request, so the
    request message itself keeps the announcement from being lost.
    """
    doctor, code = await _place(booking)
    outcome = BookingStatus.REJECTED if code else BookingStatus.CONFIRMED
    changes = await transition(booking.id, outcome, code, doctor)
    if changes is not None:
        log.info("booking %s %s", booking.id, outcome.value, extra={"booking_id": booking.id})
        count_booking("rejected" if code else "confirmed")
        if code is not None and code is not RejectionCode.DATE_IN_PAST:
            # A redelivery may hold a slot its doctor can no longer give (deactivated).
            await slots.release(booking.id)
        decided: Booking = booking.model_copy(update={**changes, "revision": booking.revision + 1})
        return decided
    # Someone else decided first (a duplicate delivery, a cancellation): keep that.
    current = await bookings.get(booking.id)
    if current is None:
        raise LookupError(f"booking {booking.id} vanished")
    if doctor and current.status is not BookingStatus.CONFIRMED:
        await slots.release(booking.id)
    return current


async def give_up(publishers: Publishers, booking_id: str) -> None:
    """After the last retry: reject the booking as "processing failed" and tell the patient.

    The request message is about to be parked, so the outcome is recorded in the
    outbox first. A booking decided already, whose announcement is what kept
    failing, is recorded for the relay to announce instead. A move is refused, and
    the appointment kept.
    """
    current = await bookings.get(booking_id)
    if current is not None and current.pending_move is not None:
        await give_up_move(publishers, current)
        return
    await record_status(booking_id, BookingStatus.REJECTED)
    if await transition(booking_id, BookingStatus.REJECTED, RejectionCode.PROCESSING_FAILED):
        count_booking("rejected")
        rejected = await bookings.get(booking_id)
        if rejected is not None:
            await announce_recorded(publishers, rejected)
        return
    current = await bookings.get(booking_id)
    if current is not None and current.status is not BookingStatus.PENDING:
        await record_status(booking_id, current.status)
