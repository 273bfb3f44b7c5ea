"""Announcing a booking's changes on the fanout exchange, once each, through the outbox.

Each change of a booking is announced as one event: a new status as
``BookingStatusChanged``, a move decided as ``MoveDecided``. Its outbox record is
``status:<booking>:<status>`` or ``status:<booking>:move-<revision>``: a status is
reached once, a move is decided once per revision. A change no request message
will bring back (a cancellation, a no-show, a decision given up on) is recorded
before the booking changes and marked sent once announced. A worker's decision on
a booking needs no record: the request message is its outbox, and the worker
announces it before it acks the request (see ``clinic.domain.outbox``).
"""

import logging

from clinic.messages import BookingStatus, BookingStatusChanged, MoveDecided
from clinic.messaging.broker import Publishers
from clinic.redaction import error_summary
from clinic.settings import settings
from clinic.store import outbox
from clinic.store.documents import Booking, MessageKind

log = logging.getLogger("clinic.outbox")


async def record_status(booking_id: str, status: BookingStatus) -> bool:
    """Record that this status change must be announced; False if it was recorded before."""
    return await outbox.add(
        outbox.new_record(MessageKind.STATUS, booking_id, status, settings.outbox_grace)
    )


async def record_move_decision(booking: Booking) -> bool:
    """Record that the decision on ``booking``'s pending move must be announced."""
    what = f"move-{booking.revision + 1}"
    record = outbox.new_record(MessageKind.STATUS, booking.id, None, settings.outbox_grace, what)
    return await outbox.add(record)


def status_event(booking: Booking) -> BookingStatusChanged | MoveDecided:
    """The event announcing the booking's latest change: its status, or a move decided."""
    if (move := booking.last_move) is not None and move.revision == booking.revision:
        return MoveDecided(
            booking_id=booking.id,
            moved=move.moved,
            date=booking.date,
            requested_date=move.requested_date,
            previous_date=move.previous_date,
            doctor_id=booking.doctor_id,
            doctor_name=booking.doctor_name,
            reason_code=move.reason_code,
            revision=booking.revision,
            occurred_at=booking.updated_at,
        )
    return BookingStatusChanged(
        booking_id=booking.id,
        status=booking.status,
        date=booking.date,
        doctor_id=booking.doctor_id,
        doctor_name=booking.doctor_name,
        reason=booking.reason,
        reason_code=booking.reason_code,
        occurred_at=booking.updated_at,
        revision=booking.revision,
    )


def announcement(booking: Booking) -> tuple[str, BookingStatusChanged | MoveDecided]:
    """The id of the outbox record of the booking's latest change, and its event."""
    event = status_event(booking)
    return outbox.record_id(MessageKind.STATUS, booking.id, event.change), event


async def announce_decision(publishers: Publishers, booking: Booking) -> None:
    """Announce a worker's decision on the booking, or on its move (whose record, written
    before the booking moved, is then marked sent)."""
    record_id, event = announcement(booking)
    await publishers.announce(event)
    if isinstance(event, MoveDecided):
        await outbox.mark_sent(record_id)


async def announce_recorded(publishers: Publishers, booking: Booking) -> None:
    """Announce a recorded change and mark it sent; on failure leave it to the relay."""
    record_id, event = announcement(booking)
    try:
        await publishers.announce(event)
        await outbox.mark_sent(record_id)
    except Exception as exc:  # noqa: BLE001 - the outbox relay announces it later
        log.warning(
            "%s not announced yet, the outbox relay will: %s",
            event.change,
            error_summary(exc),
            extra={"booking_id": booking.id},
        )
