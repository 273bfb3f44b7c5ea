"""Announcing booking status changes on the fanout exchange: at least once, not needlessly twice."""

from collections import defaultdict

from clinic.batching import Batched, inserts_of, reads_of
from clinic.messages import BookingStatus, BookingStatusChanged
from clinic.models import Booking, Doctor, PublishedMessage
from clinic.topology import status_publisher


def change_id(booking: Booking) -> str:
    """The id of the booking's current status change (its event's message id)."""
    return f"{booking.id}:{booking.status.value}"


_published_lookups = reads_of(PublishedMessage)
_published_marks = inserts_of(PublishedMessage)


async def announce(booking: Booking) -> None:
    """Publish the booking's status change, once, and record that it went out.

    The record is its own small document; the booking is only updated when the
    outbox relay was watching for the change. A crash between the publish and the
    record publishes it again, under the same message id.
    """
    if booking.notified_status is booking.status:
        return
    if await _published_lookups.run(change_id(booking)) is None:
        await _publish(booking)
        await _published_marks.run(PublishedMessage(id=change_id(booking)))
    if booking.announce_after is not None:  # the relay is watching: it can stop
        await _announced_marks.run((booking.id, booking.status))


async def _publish(booking: Booking) -> None:
    doctor_name = booking.doctor_name
    if booking.doctor_id and doctor_name is None:  # stored before bookings kept the name
        doctor = await Doctor.get(booking.doctor_id)
        doctor_name = doctor.name if doctor else None
    event = BookingStatusChanged(
        booking_id=booking.id,
        status=booking.status,
        patient_name=booking.patient_name,
        patient_email=booking.patient_email,
        date=booking.date,
        doctor_id=booking.doctor_id,
        doctor_name=doctor_name,
        reason=booking.reason,
        reason_code=booking.reason_code,
        occurred_at=booking.updated_at,
    )
    # The message id names the status change, so consumers can tell a republished
    # event from a new one.
    await status_publisher.publish(event, correlation_id=booking.id, message_id=change_id(booking))


async def _mark_announced(announced: list[tuple[str, BookingStatus]]) -> list[BaseException | None]:
    by_status: dict[BookingStatus, list[str]] = defaultdict(list)
    for booking_id, status in announced:
        by_status[status].append(booking_id)
    for status, booking_ids in by_status.items():
        # Only while the status is still the one announced: a newer change stays due.
        await Booking.get_pymongo_collection().update_many(
            {"_id": {"$in": booking_ids}, "status": status},
            {"$set": {"notified_status": status, "announce_after": None}},
        )
    return [None] * len(announced)


_announced_marks: Batched[tuple[str, BookingStatus], None] = Batched(_mark_announced)
