"""An email as the MIME message an SMTP server takes (RFC 5322 and 2045-2049).

The words in plain text and in HTML are alternatives of each other, and so is the
calendar invite, which mail clients offer to add to the calendar; the invite is
also attached as ``invite.ics``, for the clients that only show attachments.

Built with the standard library's email package. Two of its costs, the largest in
sending an email (docs/performance.md), are avoided without leaving it: its header
registry makes a new class for every header it parses, and for each multipart it
compiles a regular expression to check that no part holds the boundary it made.
"""

from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from uuid import uuid4

from clinic.clock import utcnow
from clinic.mail.outgoing import Email


class _HeaderClasses(HeaderRegistry):
    """The standard library's header classes, each made once, not once per header."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        if (made := self._made.get(key)) is None:
            made = self._made[key] = super().__getitem__(name)
        return made


EMAIL_POLICY = policy.default.clone(header_factory=_HeaderClasses())
"""The standard library's default policy for emails, with its header classes made once."""


def _boundary() -> str:
    # No part can hold a random UUID: nothing to check, unlike a boundary of the
    # standard library's own making.
    return f"=_{uuid4().hex}"


class MessageWriter:
    """Writes the clinic's emails as MIME messages from ``sender`` (``CLINIC_EMAIL_FROM``)."""

    def __init__(self, sender: str) -> None:
        # Parsed once: the same From heads every email.
        self._from = EMAIL_POLICY.header_factory("From", sender)
        self._domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"

    def message(self, email: Email) -> EmailMessage:
        """``email`` as an RFC 5322 message from the clinic."""
        message = EmailMessage(policy=EMAIL_POLICY)
        message["From"] = self._from
        message["To"] = email.to
        message["Subject"] = email.subject
        message["Date"] = format_datetime(utcnow())
        message["Message-ID"] = (
            f"<{email.reference}@{self._domain}>"
            if email.reference
            else make_msgid(domain=self._domain)
        )
        message.set_content(email.body)
        if email.html or email.calendar:
            message.make_alternative(boundary=_boundary())
        if email.html:
            message.add_alternative(email.html, subtype="html")
        if email.calendar:
            # As bytes, so its lines keep the CRLF endings RFC 5545 asks for.
            invite, method = email.calendar.encode(), {"method": email.calendar_method}
            message.add_alternative(invite, "text", "calendar", params=method)
            message.make_mixed(boundary=_boundary())
            message.add_attachment(invite, "text", "calendar", params=method, filename="invite.ics")
        # After the parts: setting content clears the Content-* headers.
        if email.language:
            message["Content-Language"] = email.language
        return message
