"""One email to one patient, and what can deliver it."""

import logging
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from clinic.redaction import mask_email

log = logging.getLogger("clinic.emails")


@dataclass(frozen=True)
class Email:
    """One email to one patient.

    ``reference`` names what the email is about (a booking's status change): a
    sender gives two emails with the same reference the same Message-ID, so a mail
    system that sees one twice, after a retry, can tell it is one email.
    """

    to: str
    subject: str
    body: str
    booking_id: str
    reference: str = ""
    # The same words as ``body``, as HTML for the mail clients that show it; and the
    # language both are in (Content-Language).
    html: str = ""
    language: str = ""
    # An iCalendar invite (RFC 5545), and its RFC 5546 method (REQUEST, CANCEL).
    calendar: str = ""
    calendar_method: str = ""


class EmailRefused(Exception):  # noqa: N818 - it names what happened, not an error kind
    """The mail server refused the email for good (an SMTP 5xx): sending it again cannot help.

    Its text names the server's reply code, never the address or the content.
    """


@runtime_checkable
class EmailSender(Protocol):
    """Anything that can deliver an email (the log, SMTP, a test's outbox)."""

    async def send(self, email: Email) -> None:
        """Deliver ``email``; raise ``EmailRefused`` if it never can be, anything else to retry."""


class LogEmailSender:
    """Writes each email to the log, with the address masked: the default without SMTP."""

    async def send(self, email: Email) -> None:
        log.info(
            "email to %s: %s",
            mask_email(email.to),
            email.subject,
            extra={"booking_id": email.booking_id},
        )
