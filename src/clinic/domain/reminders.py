"""Reminders: one email ``CLINIC_REMINDER_BEFORE`` ahead of each confirmed appointment.

When a booking worker confirms a booking, before it acknowledges the request, it
records ``reminder:<booking>:<revision>`` in the outbox, due when the reminder
is. A redelivered request records nothing more: the id is taken. The outbox
relay leases the record once it falls due and announces ``AppointmentReminderDue``
on the fanout exchange, like any change, then marks it sent; the notification
worker emails the patient once per reminder (``email:<booking>:reminder-<rev>``).

Nothing waits in RabbitMQ for a day: an expired message there leaves a queue only
when it reaches its head, and a restart or a crash would have to keep it. Here
the schedule is the database's, and a relay that dies mid-send leaves the record
leased, so the next relay sends it when the lease ends: a crash gives at most a
second announcement, which the email's record makes one email.

A reminder is for one revision of a confirmed booking: a booking cancelled or
moved since (a new revision) gets none, checked both when it is announced and
when it is emailed. A booking made closer to its appointment than the lead time
gets no separate reminder: its confirmation is the reminder.
"""

import logging
from datetime import datetime

from clinic.clock import utcnow
from clinic.messages import AppointmentReminderDue, BookingStatus
from clinic.messaging.broker import Publishers
from clinic.settings import settings
from clinic.store import bookings, outbox
from clinic.store.documents import Booking, OutboxRecord

log = logging.getLogger("clinic.reminders")


def reminder_time(booking: Booking) -> datetime:
    """When the patient of ``booking`` is reminded of the appointment."""
    return booking.date - settings.reminder_before


async def schedule_reminder(booking: Booking, now: datetime | None = None) -> bool:
    """Record the reminder of a confirmed booking; False if it needs none, or has one."""
    if booking.status is not BookingStatus.CONFIRMED:
        return False
    due = reminder_time(booking)
    if due <= (now or utcnow()):
        return False  # booked within the lead time: the confirmation is the reminder
    return await outbox.add(outbox.reminder_record(booking.id, booking.revision, due))


UPGRADE_BATCH = 500
"""Bookings read at a time when older ones are given their reminders."""


async def remind_older_bookings() -> int:
    """Schedule the reminders of bookings confirmed before reminders existed; how many.

    Run at API startup: each such booking is then given revision 0, so it is found
    once, and a booking within the lead time gets none, as a new one would.
    """
    scheduled = 0
    while older := await bookings.confirmed_unrevised(UPGRADE_BATCH):
        for booking in older:
            scheduled += await schedule_reminder(booking)
        await bookings.mark_revised([booking.id for booking in older])
    return scheduled


def still_reminded(booking: Booking | None, revision: int, now: datetime) -> bool:
    """Whether a reminder for ``revision`` still stands: the booking is confirmed as it was
    then, and the appointment is still to come."""
    return (
        booking is not None
        and booking.status is BookingStatus.CONFIRMED
        and booking.revision == revision
        and booking.date > now
    )


def reminder_event(booking: Booking, now: datetime) -> AppointmentReminderDue:
    """The announcement that ``booking``'s appointment is near."""
    return AppointmentReminderDue(
        booking_id=booking.id,
        date=booking.date,
        doctor_id=booking.doctor_id,
        doctor_name=booking.doctor_name,
        revision=booking.revision,
        occurred_at=now,
    )


async def send_reminder(publishers: Publishers, record: OutboxRecord, now: datetime) -> bool:
    """Announce a leased reminder if it still stands, and mark it sent; whether it was sent."""
    booking = await bookings.get(record.booking_id)
    if booking is None or not still_reminded(booking, record.revision or 0, now):
        await outbox.delete(record.id)  # cancelled, moved, or its time has passed
        return False
    await publishers.announce(reminder_event(booking, now))
    await outbox.mark_sent(record.id)
    log.info("reminder announced", extra={"booking_id": booking.id})
    return True
