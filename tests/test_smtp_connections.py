"""The SMTP sender's connections, against a real server on loopback: emails one after
another share one, emails at once share no more than allowed, none is held open once
the emails stop, and a connection whose email failed or was cut short is never used
again.

A mail provider counts connections as well as emails, and a TLS handshake costs more
than the email it carries; a connection left in the middle of a transaction would
garble the next email.
"""

import asyncio
import logging
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from clinic.embedded_db import free_port
from clinic.mail import Email, EmailRefused, smtp
from clinic.mail.dev_inbox import DevInbox
from clinic.mail.smtp import SmtpSender
from tests import smtp_server
from tests.integration import wait_for

CLINIC = "Clínica de prueba <citas@clinic.test>"


def email_to(address: str, n: int = 0) -> Email:
    return Email(
        to=address,
        subject=f"Su cita {n}",
        body=f"Cita número {n}.\n",
        booking_id=f"booking-{n}",
        reference=f"booking-{n}.confirmed",
    )


def arrived(server: DevInbox) -> list[tuple[str, str]]:
    """(To, Message-ID) of each email the server kept, sorted."""
    received = smtp_server.received(server.folder)
    return sorted((str(message["To"]), str(message["Message-ID"])) for message in received)


async def test_emails_one_after_another_share_one_connection(
    mail_server: tuple[DevInbox, smtp_server.MailServer],
) -> None:
    server, handler = mail_server
    sender = SmtpSender(server.url, CLINIC, timeout=10)

    for n in range(5):
        await sender.send(email_to(f"p{n}@example.com", n))

    assert len(arrived(server)) == 5
    assert len(set(handler.connections)) == 1


async def test_emails_at_once_arrive_whole_over_no_more_connections_than_allowed(
    mail_server: tuple[DevInbox, smtp_server.MailServer],
) -> None:
    # A mail server limits the connections of each client (Postfix: 50); the others wait.
    server, handler = mail_server
    sender = SmtpSender(server.url, CLINIC, timeout=10, connections=4)
    emails = [email_to(f"p{n}@example.com", n) for n in range(24)]

    await asyncio.gather(*(sender.send(email) for email in emails[:12]))
    await asyncio.gather(*(sender.send(email) for email in emails[12:]))

    assert arrived(server) == sorted((e.to, f"<{e.reference}@clinic.test>") for e in emails)
    assert len(set(handler.connections)) == 4  # the second twelve reused the first's


async def test_connections_left_waiting_are_closed_once_the_emails_stop(
    mail_server: tuple[DevInbox, smtp_server.MailServer],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A mail server gives each client a few connections: none is held open for nothing.
    server, handler = mail_server
    monkeypatch.setattr(smtp, "REUSE_WITHIN", 0.2)
    caplog.set_level(logging.INFO, logger="mail.log")  # the server's log (aiosmtpd)
    sender = SmtpSender(server.url, CLINIC, timeout=10)

    await asyncio.gather(*(sender.send(email_to(f"p{n}@example.com", n)) for n in range(3)))

    async def all_closed() -> bool:
        # The server logs each connection's end with its peer (the first, its own check).
        lines = [r for r in caplog.records if r.msg == "%r connection lost"]
        closed = {r.args[0] for r in lines if isinstance(r.args, tuple)}
        return len(set(handler.connections)) == 3 and set(handler.connections) <= closed

    await wait_for(all_closed, within=10)


async def test_after_a_refusal_or_a_send_cut_short_the_next_email_arrives_whole(
    mail_server: tuple[DevInbox, smtp_server.MailServer],
) -> None:
    server, handler = mail_server
    sender = SmtpSender(server.url, CLINIC, timeout=10)
    await sender.send(email_to("first@example.com", 1))

    with pytest.raises(EmailRefused):
        await sender.send(email_to("refused.ana@example.com", 2))
    # Cut short while the server is still taking it: the worker's timeout on a send.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(sender.send(email_to("slow.ana@example.com", 3)), 0.5)
    await sender.send(email_to("next@example.com", 4))

    assert ("next@example.com", "<booking-4.confirmed@clinic.test>") in arrived(server)
    # The first connection is gone with the refusal, the second with the cut.
    assert handler.connections[0] != handler.connections[-1]


async def test_an_international_address_a_server_cannot_take_is_refused_for_good(
    tmp_path: Path,
) -> None:
    # A server that does not offer SMTPUTF8, as many do not.
    handler, port = smtp_server.MailServer(tmp_path / "mail"), free_port()
    server = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=False)
    server.start()
    try:
        sender = SmtpSender(f"smtp://127.0.0.1:{port}?tls=off", CLINIC, timeout=10)
        with pytest.raises(EmailRefused, match="SMTPUTF8") as refused:
            await sender.send(email_to("josé@ejemplo.es"))
    finally:
        server.stop()

    assert "josé" not in str(refused.value)
    assert list((tmp_path / "mail").glob("*.eml")) == []
