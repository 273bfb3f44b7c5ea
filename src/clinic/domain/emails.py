"""Emails to patients: what they say, who sends them, and that each is sent once.

Before sending, the notification worker records ``email:<booking>:<status>``
(a reminder: ``email:<booking>:reminder-<revision>``; a move decided:
``email:<booking>:move-<revision>``) in the outbox; the unique id lets exactly
one delivery of the event win. The record is marked sent once the email left, so
a redelivery (after a crash before the ack, or a duplicated event) finds it sent
and sends nothing. A record whose send never finished (the worker died mid-send)
is taken over once ``CLINIC_EMAIL_SEND_TIMEOUT`` has passed, so the email is
retried, not forgotten.
"""

import asyncio
import logging
from functools import cache

from clinic.clock import utcnow
from clinic.domain.email_content import EMAILED, compose_email
from clinic.domain.reminders import still_reminded
from clinic.mail import EmailRefused, EmailSender, LogEmailSender
from clinic.mail.smtp import SmtpSender
from clinic.messages import AppointmentReminderDue, BookingStatusChanged, PatientEvent
from clinic.metrics import count_email
from clinic.settings import settings
from clinic.store import bookings, doctors, outbox
from clinic.store.documents import MessageKind, OutboxRecord
from clinic.tracing import span

log = logging.getLogger("clinic.emails")


async def default_email_sender() -> EmailSender:
    """The sender the notification worker uses unless a test overrides it: the SMTP
    server at ``CLINIC_SMTP_URL``, or the log when none is set."""
    # async: a plain function would be run in a thread for every message.
    return _configured_sender()


@cache
def _configured_sender() -> EmailSender:
    if settings.smtp_url:
        return SmtpSender(
            settings.smtp_url,
            settings.email_from,
            settings.email_send_timeout,
            settings.smtp_connections,
        )
    return LogEmailSender()


class SendInProgress(Exception):  # noqa: N818 - it names the situation, not an error kind
    """Another delivery of the same event is sending this email right now; retry later."""


def email_record(event: PatientEvent, lease: float) -> OutboxRecord:
    """The outbox record of ``event``'s email, unsent, leased for ``lease`` seconds."""
    status = event.status if isinstance(event, BookingStatusChanged) else None
    return outbox.new_record(MessageKind.EMAIL, event.booking_id, status, lease, event.change)


async def claim_email(event: PatientEvent) -> OutboxRecord | None:
    """Record that ``event``'s email is being sent, here; None if it was sent already.

    Raises ``SendInProgress`` while another worker's send is still within its
    timeout; after that the record is stale and taken over here.
    """
    lease = settings.email_send_timeout
    record = email_record(event, lease)
    if await outbox.add(record):
        return record
    if (taken_over := await outbox.take_over(record.id, lease)) is not None:
        log.warning(
            "retrying an email whose send never finished", extra={"booking_id": event.booking_id}
        )
        return taken_over
    existing = await outbox.get(record.id)
    if existing is not None and existing.sent_at is not None:
        return None
    raise SendInProgress(f"email {record.id} is being sent by another delivery")


DEFAULT_MINUTES = 30
"""How long an appointment is in its invite when its doctor is gone from the clinic."""


async def appointment_minutes(doctor_id: str | None) -> int:
    """How long an appointment with this doctor is: the length of the doctor's slots."""
    known = {doctor.id: doctor.slot_minutes for doctor in await doctors.recently()}
    return known.get(doctor_id or "", DEFAULT_MINUTES)


async def email_once(event: PatientEvent, sender: EmailSender) -> bool:
    """Tell the patient, by email, what happened to their booking, or remind them of it;
    False if they were told already, or the reminder no longer stands.

    The address is read from the booking, not the event; a booking whose patient's
    data was erased gets no email.
    """
    booking = await bookings.get(event.booking_id)
    if booking is None or not booking.patient_email:
        log.info("no address to email (erased)", extra={"booking_id": event.booking_id})
        return False
    if isinstance(event, BookingStatusChanged) and event.status not in EMAILED:
        log.info("no email for %s", event.status.value, extra={"booking_id": booking.id})
        return False
    if isinstance(event, AppointmentReminderDue) and not still_reminded(
        booking, event.revision, utcnow()
    ):
        # Cancelled or moved since the reminder was announced.
        log.info("reminder dropped: the booking changed", extra={"booking_id": booking.id})
        return False
    record = await claim_email(event)
    if record is None:
        log.info("email already sent; duplicate ignored", extra={"booking_id": booking.id})
        return False
    try:
        async with asyncio.timeout(settings.email_send_timeout):
            # The status only: the span must name neither the patient nor their address.
            with span("email send", {"booking.status": _what(event)}):
                minutes = await appointment_minutes(event.doctor_id)
                await sender.send(compose_email(event, booking, minutes))
    except Exception as failure:
        count_email("refused" if isinstance(failure, EmailRefused) else "failed")
        # Not delivered (or it timed out): give the record back so the retry sends at once.
        await outbox.release(record.id, record.due_at)
        raise
    count_email("sent")
    await outbox.mark_sent(record.id)
    return True


def _what(event: PatientEvent) -> str:
    if isinstance(event, BookingStatusChanged):
        return event.status.value
    return "reminder" if isinstance(event, AppointmentReminderDue) else "move"
