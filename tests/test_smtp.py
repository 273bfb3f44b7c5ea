"""Patients' emails over real SMTP: a real server on loopback, the real broker and database.

Both handlers run in this process with the clinic's own SMTP sender, and what the
server receives is parsed back. A 4xx is retried and delivered once; a 5xx is
parked at once, with the reply code and nothing that names the patient; a mail
server killed mid-run and started again still gets each email once.
"""

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from faststream import FastStream
from prometheus_client import REGISTRY
from pydantic import ValidationError

from clinic.domain.emails import default_email_sender
from clinic.embedded_db import free_port
from clinic.mail.dev_inbox import DevInbox
from clinic.mail.smtp import SmtpSender, connection_options
from clinic.messaging.parking import list_parked
from clinic.settings import Settings, settings
from clinic.store.documents import Booking
from tests import smtp_server
from tests.conftest import broker_of, publishers_of, vhost_rabbitmqctl
from tests.integration import stored_booking, wait_for, wait_until_settled

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_db")]

CLINIC = "Clínica de prueba <citas@clinic.test>"
PATIENT = "Juan Pérez"
"""The name ``stored_booking`` books under."""


async def decided_over_smtp(workers: FastStream, server: DevInbox, address: str) -> Booking:
    """A booking for ``address``, decided by the workers, its email sent over SMTP to
    ``server``; returned once nothing more can happen (sent, retried or parked)."""
    booking = await stored_booking(days=12, email=address)
    sender = SmtpSender(server.url, CLINIC, settings.email_send_timeout)
    with broker_of(workers).provider.scope(default_email_sender, lambda: sender):
        await publishers_of(workers).request_decision(booking.id)
        await wait_until_settled(vhost_rabbitmqctl)
    return booking


# An international address (RFC 6531), which the API takes, goes over SMTPUTF8.
@pytest.mark.parametrize("address", ["ana.ruiz@example.com", "josé.núñez@ejemplo.es"])
async def test_a_decision_reaches_the_patient_over_smtp_from_the_clinic(
    workers: FastStream,
    mail_server: tuple[DevInbox, smtp_server.MailServer],
    rabbit_vhost: str,
    address: str,
) -> None:
    server, _ = mail_server
    booking = await decided_over_smtp(workers, server, address)
    [message] = smtp_server.received(server.folder)
    assert message["From"] == CLINIC
    assert message["To"] == address
    # In Spanish, the bookings' default language, in a text and an HTML part.
    assert str(message["Subject"]).startswith("Su cita está confirmada: ")
    assert message["Content-Language"] == "es"
    # One Message-ID per status change: a copy sent after a retry is the same email.
    assert message["Message-ID"] == f"<{booking.id}.confirmed@clinic.test>"
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None
    assert html is not None
    assert "está confirmada" in text.get_content()
    assert "está confirmada" in html.get_content()
    assert f"A nombre de: {PATIENT}" in text.get_content()


async def test_a_temporary_refusal_is_retried_and_delivered_once(
    workers: FastStream, mail_server: tuple[DevInbox, smtp_server.MailServer], rabbit_vhost: str
) -> None:
    server, handler = mail_server
    address = "greylisted.ana@example.com"
    await decided_over_smtp(workers, server, address)
    assert handler.recipients == [address, address]  # refused with 451, then taken
    assert len(smtp_server.received(server.folder)) == 1
    assert await list_parked(settings.rabbit_url) == []


async def test_a_permanent_refusal_is_parked_at_once_naming_no_patient(
    workers: FastStream, mail_server: tuple[DevInbox, smtp_server.MailServer], rabbit_vhost: str
) -> None:
    server, handler = mail_server
    address = "refused.ana@example.com"
    await decided_over_smtp(workers, server, address)
    [parked] = await list_parked(settings.rabbit_url)
    assert parked.origin == "email_notifications"
    assert "SMTP 550, permanent" in parked.reason
    # The server's reply quoted the address; the parked reason does not.
    for personal in (address, "refused.ana", PATIENT):
        assert personal not in parked.reason
    assert handler.recipients == [address]  # not retried: it could never succeed
    assert smtp_server.received(server.folder) == []


@pytest.mark.faults
async def test_the_mail_server_killed_mid_run_still_gets_each_email_once(
    workers: FastStream, tmp_path: Path, rabbit_vhost: str
) -> None:
    folder, port = tmp_path / "mail", free_port()

    def start_server() -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "clinic.mail.dev_inbox", "--port", str(port)]
        server = subprocess.Popen([*command, "--folder", str(folder)], stdout=subprocess.PIPE)
        assert server.stdout is not None
        assert b"inbox listening" in server.stdout.readline()
        return server

    bookings = [await stored_booking(12 + n, f"patient{n}@example.com") for n in range(20)]
    server = start_server()
    url = f"smtp://127.0.0.1:{port}?tls=off"
    sender = SmtpSender(url, CLINIC, settings.email_send_timeout)
    try:
        with broker_of(workers).provider.scope(default_email_sender, lambda: sender):
            for booking in bookings:
                await publishers_of(workers).request_decision(booking.id)

            async def some_delivered() -> bool:
                return len(list(folder.glob("*.eml"))) >= 3

            await wait_for(some_delivered)
            before = failed_sends()
            server.send_signal(signal.SIGKILL)
            server.wait()

            # Down until an email has failed for it; then up again, within the retries.
            async def a_send_failed() -> bool:
                return failed_sends() > before

            await wait_for(a_send_failed, within=30)
            server = start_server()
            received = await wait_for(smtp_server.emails_in(folder, len(bookings)), within=60)
            await wait_until_settled(vhost_rabbitmqctl)
    finally:
        server.kill()
        server.wait()
    ids = sorted(message["Message-ID"] for message in received)
    assert ids == sorted(f"<{b.id}.confirmed@clinic.test>" for b in bookings)
    assert await list_parked(settings.rabbit_url) == []


def failed_sends() -> float:
    """How many sends have failed in this process (the handlers run here)."""
    return REGISTRY.get_sample_value("clinic_emails_total", {"result": "failed"}) or 0.0


@pytest.mark.parametrize(
    ("url", "options"),
    [
        (
            "smtp://mailer:s%40cret@mail.example:587",
            ("mail.example", 587, "mailer", "s@cret", False, True),
        ),
        ("smtps://mail.example", ("mail.example", 465, None, None, True, False)),
        ("smtp://127.0.0.1:1025?tls=off", ("127.0.0.1", 1025, None, None, False, False)),
    ],
)
def test_the_smtp_url_says_where_how_and_as_whom(url: str, options: tuple[object, ...]) -> None:
    given = connection_options(url, 5.0)
    keys = ("hostname", "port", "username", "password", "use_tls", "start_tls")
    assert tuple(given[key] for key in keys) == options


@pytest.mark.parametrize(
    ("url", "sender", "complaint"),
    [
        ("http://mail.example", CLINIC, "must be smtp://"),
        ("smtp://", CLINIC, "must be smtp://"),
        ("smtps://mail.example?tls=off", CLINIC, "only ?tls=off"),
        ("smtp://mail.example?verify=no", CLINIC, "only ?tls=off"),
        ("smtp://mail.example", "", "needs CLINIC_EMAIL_FROM"),
        ("smtp://mailer:change-me-now@mail.example", CLINIC, "example value"),
    ],
)
def test_an_unfit_smtp_setting_is_refused_at_startup(url: str, sender: str, complaint: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(complaint)) as refused:
        Settings(smtp_url=url, email_from=sender)
    assert "change-me-now" not in str(refused.value)
