"""Emails sent through an SMTP server (``CLINIC_SMTP_URL``), with aiosmtplib.

``smtp://user:password@host:587`` upgrades the connection with STARTTLS and refuses
a server that does not offer it; ``smtps://...:465`` speaks TLS from the start;
``smtp://host:1025?tls=off`` sends in the clear, for a mail sink on the same host
or network (Mailpit, ``clinic dev``'s inbox). Certificates are verified.

A reply of 5xx is the server's final word: ``EmailRefused``, and the email is
parked. Anything else that fails (a 4xx, a refused connection, a timeout) raises
to be retried. No error raised here quotes the server's reply text, which can
name the recipient.
"""

import asyncio
import socket
from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any, NoReturn
from urllib.parse import unquote, urlsplit
from uuid import uuid4

import aiosmtplib

from clinic.clock import utcnow
from clinic.mail.outgoing import Email, EmailRefused


class _HeaderClasses(HeaderRegistry):
    """The standard library's header classes, each made once.

    ``HeaderRegistry`` makes a new class for every header it parses, on every lookup:
    a quarter of building an email out of its parts."""

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
    # The standard library would make one and compile a regular expression to check
    # that no part holds it, for each multipart; no part can hold a random UUID.
    return f"=_{uuid4().hex}"


class SmtpUnavailable(Exception):  # noqa: N818 - it names the situation, not an error kind
    """The mail server could not take the email now; it is retried."""


def connection_options(url: str, timeout: float) -> dict[str, Any]:
    """aiosmtplib's connection keywords for ``url`` (see the module's docstring)."""
    parts = urlsplit(url)
    implicit_tls = parts.scheme == "smtps"
    plain = parts.query == "tls=off"
    return {
        "hostname": parts.hostname,
        "port": parts.port or (465 if implicit_tls else 25 if plain else 587),
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "use_tls": implicit_tls,
        "start_tls": not implicit_tls and not plain,
        "timeout": timeout,
    }


class SmtpSender:
    """Delivers each email to the SMTP server at ``url``, from ``sender``; one connection each."""

    def __init__(self, url: str, sender: str, timeout: float) -> None:
        self._options = connection_options(url, timeout)
        self._sender = sender
        self._domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
        self._local_hostname: str | None = None

    def message(self, email: Email) -> EmailMessage:
        """``email`` as an RFC 5322 message from the clinic."""
        message = EmailMessage(policy=EMAIL_POLICY)
        message["From"] = self._sender
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
            # Both ways calendars look for it: an alternative part, which mail clients
            # offer to add to the calendar, and a file for those that show attachments.
            # As bytes, so its lines keep the CRLF endings RFC 5545 asks for.
            invite, method = email.calendar.encode(), {"method": email.calendar_method}
            message.add_alternative(invite, "text", "calendar", params=method)
            message.make_mixed(boundary=_boundary())
            message.add_attachment(invite, "text", "calendar", params=method, filename="invite.ics")
        # After the parts: setting content clears the Content-* headers.
        if email.language:
            message["Content-Language"] = email.language
        return message

    async def send(self, email: Email) -> None:
        """Hand ``email`` to the server; ``EmailRefused`` on a 5xx, another error to retry."""
        if self._local_hostname is None:
            # The name this host greets the server with; aiosmtplib would look it up, in
            # a thread of its own, for every connection.
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        try:
            await aiosmtplib.send(
                self.message(email), local_hostname=self._local_hostname, **self._options
            )
        except aiosmtplib.SMTPConnectResponseError as exc:
            # A greeting of 5xx refuses the connection, not this email: retried.
            raise SmtpUnavailable(
                f"the mail server refused the connection: SMTP {exc.code}"
            ) from None
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = sorted({refused.code for refused in exc.recipients})
            _raise_for(codes, "refused the recipient")
        except aiosmtplib.SMTPResponseException as exc:
            _raise_for([exc.code], f"refused the email ({type(exc).__name__})")
        except aiosmtplib.SMTPNotSupported:
            raise SmtpUnavailable(
                "the mail server offers no STARTTLS, which CLINIC_SMTP_URL asks for "
                "(?tls=off sends in the clear, to a sink on this host or network)"
            ) from None


def _raise_for(codes: list[int], what: str) -> NoReturn:
    replies = ", ".join(map(str, codes))
    if all(500 <= code < 600 for code in codes):
        raise EmailRefused(f"the mail server {what}: SMTP {replies}, permanent") from None
    raise SmtpUnavailable(f"the mail server {what}: SMTP {replies}, temporary") from None
