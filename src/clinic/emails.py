"""Emails to patients, and the sender the notification worker is given."""

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from clinic.messages import BookingStatus, BookingStatusChanged
from clinic.privacy import mask_email
from clinic.scheduling import local_time

log = logging.getLogger("clinic.emails")

_SUBJECTS = {
    BookingStatus.PENDING: "We received your appointment request",
    BookingStatus.CONFIRMED: "Your appointment is confirmed",
    BookingStatus.REJECTED: "Your appointment request could not be booked",
    BookingStatus.CANCELLED: "Your appointment is cancelled",
}


@dataclass(frozen=True)
class Email:
    """One email to one patient."""

    to: str
    subject: str
    body: str
    booking_id: str


@runtime_checkable
class EmailSender(Protocol):
    """Anything that can deliver an email (the log, SMTP, a test's outbox)."""

    async def send(self, email: Email) -> None:
        """Deliver ``email``; raise if it was not delivered, so it is retried."""


class LogEmailSender:
    """Writes each email to the log, with the address masked. The default sender."""

    async def send(self, email: Email) -> None:
        log.info(
            "email to %s: %s",
            mask_email(email.to),
            email.subject,
            extra={"booking_id": email.booking_id},
        )


def local_when(moment: datetime) -> str:
    """An appointment time as the patient reads it: clinic-local, with its UTC offset."""
    local = local_time(moment)
    offset = local.strftime("%z")
    return f"{local:%A %d %B %Y at %H:%M} {local.tzname()} (UTC{offset[:3]}:{offset[3:]})"


def compose_email(event: BookingStatusChanged) -> Email:
    """The email that tells a patient their booking's new status."""
    when = local_when(event.date)
    with_doctor = f" with {event.doctor_name}" if event.doctor_name else ""
    lines = [
        f"Dear {event.patient_name},",
        "",
        f"Your appointment{with_doctor} on {when} is now {event.status.value}.",
    ]
    if event.reason:
        lines.append(f"Reason: {event.reason}")
    lines += ["", f"Booking reference: {event.booking_id}"]
    return Email(
        to=event.patient_email,
        subject=f"{_SUBJECTS[event.status]} ({when})",
        body="\n".join(lines),
        booking_id=event.booking_id,
    )


async def default_email_sender() -> EmailSender:
    """The sender the notification worker uses unless a test or deployment overrides it."""
    # async: a plain function would be run in a thread for every message.
    return LogEmailSender()
