"""Emails sent through an SMTP server (``CLINIC_SMTP_URL``), with aiosmtplib.

``smtp://user:password@host:587`` upgrades the connection with STARTTLS and refuses
a server that does not offer it; ``smtps://...:465`` speaks TLS from the start;
``smtp://host:1025?tls=off`` sends in the clear, for a mail sink on the same host
or network (Mailpit, ``clinic dev``'s inbox). Certificates are verified.

A sender holds at most ``CLINIC_SMTP_CONNECTIONS`` connections; more emails at once
wait for one, since a mail server limits the connections of each client. A connection
that has just delivered an email is kept for the next one, for a few seconds:
connecting, greeting, the TLS handshake and logging in cost more than the email
itself, so under load every email goes over a connection made for an earlier one.

A reply of 5xx is the server's final word: ``EmailRefused``, and the email is
parked. Anything else that fails (a 4xx, a refused connection, a timeout) raises
to be retried. No error raised here quotes the server's reply text, which can
name the recipient.
"""

import asyncio
import socket
import time
from typing import Any, NoReturn
from urllib.parse import unquote, urlsplit

import aiosmtplib

from clinic.mail.mime import Message, MessageWriter
from clinic.mail.outgoing import Email, EmailRefused

REUSE_WITHIN = 5.0
"""Seconds a connection waits for the next email before it is closed. Far within any
server's patience (RFC 5321 asks servers to wait five minutes), so a kept connection
is not one the server is hanging up on."""


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
    """Delivers each email to the SMTP server at ``url``, from ``sender``."""

    def __init__(self, url: str, sender: str, timeout: float, connections: int = 10) -> None:
        self._options = connection_options(url, timeout)
        self._writer = MessageWriter(sender)
        self._local_hostname: str | None = None
        self._connections = asyncio.Semaphore(connections)
        self._waiting: list[tuple[aiosmtplib.SMTP, float]] = []
        """Connected clients with no email to send, and since when, the latest last."""
        self._closing: asyncio.TimerHandle | None = None

    async def send(self, email: Email) -> None:
        """Hand ``email`` to the server; ``EmailRefused`` on a 5xx, another error to retry."""
        message = self._writer.message(email)
        async with self._connections:
            await self._send(message)

    async def _send(self, message: Message) -> None:
        client, sent = self._kept(), False
        # RFC 6531: a server that takes SMTPUTF8 takes 8-bit MIME too.
        options = ["SMTPUTF8", "BODY=8BITMIME"] if message.international else []
        try:
            if client is None:
                client = await self._connect()
            await client.sendmail(
                message.sender, [message.recipient], message.data, mail_options=options
            )
            sent = True
        except aiosmtplib.SMTPNotSupported:
            if client is not None and client.is_connected:  # connected: the email's fault
                raise EmailRefused(
                    "the mail server takes no international address (SMTPUTF8), permanent"
                ) from None
            raise SmtpUnavailable(
                "the mail server offers no STARTTLS, which CLINIC_SMTP_URL asks for "
                "(?tls=off sends in the clear, to a sink on this host or network)"
            ) from None
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
        finally:
            # Kept only once its email is sent: a send that failed, timed out or was
            # cancelled may have left the connection anywhere in a transaction.
            if client is not None and not self._keep(client, sent):
                client.close()  # no QUIT to wait for: the email is delivered, or failed

    async def _connect(self) -> aiosmtplib.SMTP:
        if self._local_hostname is None:
            # The name this host greets the server with; aiosmtplib would look it up, in
            # a thread of its own, for every connection.
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        client = aiosmtplib.SMTP(local_hostname=self._local_hostname, **self._options)
        try:
            await client.connect()  # and STARTTLS, and the login, as the URL asks
        except BaseException:
            client.close()
            raise
        return client

    def _kept(self) -> aiosmtplib.SMTP | None:
        """The connection that waited least, if it is still open and fresh; the others that
        waited too long are closed."""
        now = time.monotonic()
        while self._waiting:
            client, since = self._waiting.pop()
            if client.is_connected and now - since < REUSE_WITHIN:
                return client
            client.close()
        return None

    def _keep(self, client: aiosmtplib.SMTP, sent: bool) -> bool:
        """Keep ``client`` for the next email if it sent its own."""
        if not (sent and client.is_connected):
            return False
        self._waiting.append((client, time.monotonic()))
        if self._closing is None:
            loop = asyncio.get_running_loop()
            self._closing = loop.call_later(REUSE_WITHIN, self._close_unused)
        return True

    def _close_unused(self) -> None:
        """Close the connections that waited ``REUSE_WITHIN`` for nothing, so that none
        is held open after the emails stop; come back for the others."""
        self._closing = None
        now = time.monotonic()
        fresh: list[tuple[aiosmtplib.SMTP, float]] = []
        for client, since in self._waiting:
            if now - since < REUSE_WITHIN:
                fresh.append((client, since))
            else:
                client.close()
        self._waiting = fresh
        if fresh:
            oldest = fresh[0][1]  # kept in the order they were kept
            loop = asyncio.get_running_loop()
            self._closing = loop.call_later(oldest + REUSE_WITHIN - now, self._close_unused)


def _raise_for(codes: list[int], what: str) -> NoReturn:
    replies = ", ".join(map(str, codes))
    if all(500 <= code < 600 for code in codes):
        raise EmailRefused(f"the mail server {what}: SMTP {replies}, permanent") from None
    raise SmtpUnavailable(f"the mail server {what}: SMTP {replies}, temporary") from None
