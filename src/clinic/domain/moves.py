"""Moving a confirmed appointment to another free slot, of the same doctor or another.

The patient (with the manage token) or staff ask; the API stores the request on the
booking as ``pending_move``, due like a new booking's request, and hands it to the
booking workers through ``booking_requests``. Until a worker decides it, the booking
keeps its appointment and its slot, so a refused move costs the patient nothing.

A worker takes the move through the same confirmation step as a booking, then
holds the new slot *before* it gives up the old one: the new slot is claimed under
a holder of the move's own (``slots.move_holder``), the old claim is deleted, the
new claim is handed to the booking, and only then does the booking take the new
time. Every step can be repeated, so a redelivery after a crash finishes the move;
the unique slot id means no two bookings ever hold one slot, however moves and new
bookings race. The decision, moved or refused, makes a new revision of the booking
and is announced as ``MoveDecided``, once per revision.
"""

import logging
from datetime import datetime

from clinic.clock import utcnow
from clinic.domain.announcements import announce_recorded, record_move_decision
from clinic.domain.outbox import request_due
from clinic.domain.scheduling import slot_problem
from clinic.messages import BookingStatus, RejectionCode
from clinic.messaging.broker import Publishers
from clinic.store import bookings, doctors, slots
from clinic.store.documents import Booking, Doctor, MoveOutcome, PendingMove

log = logging.getLogger("clinic.booking")


class CannotMove(Exception):  # noqa: N818 - it names the situation, not an error kind
    """This booking cannot be moved now; the text says why, naming no patient."""


async def ask_to_move(
    booking: Booking, date: datetime, doctor_id: str | None, ticket: str
) -> Booking:
    """Store the request to move ``booking`` to ``date`` with ``doctor_id`` (by default,
    its doctor), to be handed over with ``ticket``; the booking with it. Raises
    ``CannotMove`` with the reason."""
    if booking.status is not BookingStatus.CONFIRMED:
        raise CannotMove("Only a confirmed appointment can be moved.")
    if booking.pending_move is not None:
        raise CannotMove("A move of this appointment is being decided: wait for its email.")
    move = PendingMove(date=date, doctor_id=doctor_id or booking.doctor_id or "")
    if (move.date, move.doctor_id) == (booking.date, booking.doctor_id):
        raise CannotMove("The appointment is already at that time.")
    due = request_due()
    if not await bookings.add_move(booking, move, due, ticket):
        raise CannotMove("The booking changed meanwhile: look it up and try again.")
    log.info("move of booking %s asked for", booking.id, extra={"booking_id": booking.id})
    changes = {"pending_move": move, "request_due_at": due, "hand_over": ticket}
    asked: Booking = booking.model_copy(update=changes)
    return asked


async def _new_slot(
    booking: Booking, move: PendingMove, holder: str
) -> tuple[Doctor | None, RejectionCode | None]:
    """The doctor whose slot at the move's time is now held for the move, or why none is."""
    if move.date <= utcnow():
        return None, RejectionCode.DATE_IN_PAST
    doctor = await doctors.get(move.doctor_id)
    if doctor is None:
        return None, RejectionCode.DOCTOR_UNAVAILABLE
    if problem := slot_problem(doctor, move.date):
        return None, problem
    if not await slots.claim_for_move(doctor.id, move.date, booking.id, holder):
        return None, RejectionCode.SLOT_TAKEN
    return doctor, None


async def decide_move(booking: Booking) -> Booking:
    """Move ``booking`` to the time its pending move asks for, if that slot is free and
    the doctor works then; else refuse the move and keep the appointment. The booking
    as it is now; the caller announces the decision before it acknowledges the request.
    """
    move = booking.pending_move
    if move is None:
        return booking
    holder = slots.move_holder(booking.id, booking.revision)
    doctor, code = await _new_slot(booking, move, holder)
    outcome = MoveOutcome(
        revision=booking.revision + 1,
        moved=doctor is not None,
        requested_date=move.date,
        previous_date=booking.date if doctor else None,
        reason_code=code,
    )
    changes: dict[str, object] = {"last_move": outcome.model_dump(), "updated_at": utcnow()}
    if doctor is not None:
        await slots.hand_over_move(booking.id, holder, slots.slot_key(doctor.id, move.date))
        changes |= {"date": move.date, "doctor_id": doctor.id, "doctor_name": doctor.name}
    if await bookings.end_move(booking, changes):
        log.info(
            "booking %s %s",
            booking.id,
            "moved" if doctor else f"not moved: {code}",
            extra={"booking_id": booking.id},
        )
        decided = {**changes, "last_move": outcome, "pending_move": None, "request_due_at": None}
        moved: Booking = booking.model_copy(update={**decided, "revision": outcome.revision})
        return moved
    # Cancelled meanwhile, or another delivery decided the move first.
    current = await bookings.get(booking.id)
    if current is None:
        raise LookupError(f"booking {booking.id} vanished")
    if current.status is not BookingStatus.CONFIRMED:
        await slots.release(booking.id)  # a cancelled booking holds no slot
    return current


async def give_up_move(publishers: Publishers, booking: Booking) -> None:
    """After the last retry: refuse the move as "processing failed" and tell the patient,
    who keeps the appointment. The request is about to be parked, so the decision is
    recorded in the outbox first."""
    move = booking.pending_move
    if move is None:
        return
    await record_move_decision(booking)
    outcome = MoveOutcome(
        revision=booking.revision + 1,
        moved=False,
        requested_date=move.date,
        reason_code=RejectionCode.PROCESSING_FAILED,
    )
    if await bookings.end_move(
        booking, {"last_move": outcome.model_dump(), "updated_at": utcnow()}
    ):
        await slots.release_move(slots.move_holder(booking.id, booking.revision))
        if (refused := await bookings.get(booking.id)) is not None:
            await announce_recorded(publishers, refused)
