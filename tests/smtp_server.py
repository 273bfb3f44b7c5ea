"""A real SMTP server on loopback for the tests: clinic dev's inbox, with a mail
server's refusals added.

Addresses starting with ``refused`` get ``550`` (the mailbox does not exist), as a
real server answers; those starting with ``greylisted`` get ``451`` (try again later)
the first time, as greylisting servers do, and are taken the second. An email to an
address starting with ``slow`` is answered only after ``SLOW`` seconds, as a server
under load answers.
"""

import asyncio
import email
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from clinic.mail.dev_inbox import DevInbox, SaveToFolder

SLOW = 2.0
"""Seconds the server takes to answer an email to a ``slow...`` address."""


class MailServer(SaveToFolder):
    """The inbox's handler, refusing some recipients; ``recipients`` lists every RCPT seen."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.recipients: list[str] = []
        self.connections: list[object] = []
        """The client's end of the connection each email came over."""

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's name)
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        self.recipients.append(address)
        if address.startswith("refused"):
            # Real servers quote the address: the clinic must not pass it on.
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        if address.startswith("greylisted") and self.recipients.count(address) == 1:
            return f"451 4.7.1 <{address}>: greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        if any(address.startswith("slow") for address in envelope.rcpt_tos):
            await asyncio.sleep(SLOW)
        self.connections.append(session.peer)
        return await super().handle_DATA(server, session, envelope)


def start(folder: Path, port: int) -> tuple[DevInbox, MailServer]:
    """The tests' mail server, listening on ``port`` in this process."""
    handler = MailServer(folder)
    server = DevInbox(folder, port, handler=handler)
    server.start()
    return server, handler


def emails_in(folder: Path, count: int) -> Callable[[], Awaitable[list[EmailMessage] | None]]:
    """A poll for ``wait_for``: the emails the server kept, once there are ``count``."""

    async def poll() -> list[EmailMessage] | None:
        found = received(folder)
        assert len(found) <= count, f"{len(found)} emails where {count} were due"
        return found if len(found) == count else None

    return poll


def received(folder: Path) -> list[EmailMessage]:
    """Every email the server in ``folder`` kept, oldest first, parsed."""
    messages = []
    for path in sorted(folder.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=default)
        assert isinstance(message, EmailMessage)
        messages.append(message)
    return messages
