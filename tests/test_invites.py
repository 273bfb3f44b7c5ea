"""What a patient's email carries besides its words: the manage link that opens the
booking, and a calendar invite that follows the booking's changes.

The emails travel over real SMTP to a server on loopback and are parsed back; the
link is followed through the HTTP API, and the invites are read with icalendar.
"""

import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from faststream import FastStream
from httpx import AsyncClient
from icalendar import Calendar

from clinic.clock import utcnow
from clinic.domain.calendar_invite import calendar_invite
from clinic.domain.email_content import compose_email
from clinic.domain.emails import default_email_sender
from clinic.domain.manage_tokens import derived_token
from clinic.mail.dev_inbox import DevInbox
from clinic.mail.smtp import SmtpSender
from clinic.messages import BookingStatus, BookingStatusChanged, Language
from clinic.settings import settings
from clinic.store.documents import Booking
from tests import smtp_server
from tests.conftest import broker_of
from tests.integration import wait_for

pytestmark = pytest.mark.usefixtures("clean_db")

CLINIC = "Clínica de prueba <citas@clinic.test>"
WHEN = datetime(2027, 6, 14, 8, 30, tzinfo=UTC)
LINK = re.compile(r"https://citas\.clinic\.test/manage/([0-9a-f-]+)#([\w-]+)")


def event(status: BookingStatus, revision: int) -> BookingStatusChanged:
    return BookingStatusChanged(
        booking_id="3f2b8c1e-7d4a-4c55-9a0e-2b6f1d9c8e71",
        status=status,
        date=WHEN,
        doctor_name="Dra. Lucía García",
        occurred_at=utcnow(),
        revision=revision,
    )


BOOKING = Booking.model_construct(
    patient_name="José", patient_email="jose@example.com", date=WHEN, language=Language.ES
)


def parsed(text: str) -> Calendar:
    calendar = Calendar.from_ical(text)
    assert isinstance(calendar, Calendar)
    return calendar


def test_a_confirmation_invites_to_the_appointment_by_the_bookings_uid() -> None:
    invite = calendar_invite(event(BookingStatus.CONFIRMED, 1), BOOKING, minutes=20)
    assert invite is not None
    assert invite.method == "REQUEST"
    assert "\r\n" in invite.text  # RFC 5545's line endings
    calendar = parsed(invite.text)
    [appointment] = calendar.events
    assert calendar.method == "REQUEST"
    assert appointment.uid == "3f2b8c1e-7d4a-4c55-9a0e-2b6f1d9c8e71"
    assert appointment.sequence == 1
    assert appointment.start == WHEN
    assert appointment.end == WHEN + timedelta(minutes=20)
    assert appointment.summary == "Cita con Dra. Lucía García"
    assert appointment.status == "CONFIRMED"
    assert [str(who) for who in appointment.attendees] == ["mailto:jose@example.com"]
    assert str(appointment.organizer).startswith("mailto:")


def test_a_cancellation_cancels_the_same_event_with_a_higher_sequence() -> None:
    confirmed = calendar_invite(event(BookingStatus.CONFIRMED, 1), BOOKING, 30)
    cancelled = calendar_invite(event(BookingStatus.CANCELLED, 2), BOOKING, 30)
    assert confirmed is not None
    assert cancelled is not None
    [before] = parsed(confirmed.text).events
    calendar = parsed(cancelled.text)
    [after] = calendar.events
    assert cancelled.method == calendar.method == "CANCEL"
    assert after.status == "CANCELLED"
    assert after.uid == before.uid
    assert after.sequence > before.sequence


@pytest.mark.parametrize("status", [BookingStatus.PENDING, BookingStatus.REJECTED])
def test_a_change_that_touches_no_calendar_carries_no_invite(status: BookingStatus) -> None:
    assert calendar_invite(event(status, 1), BOOKING, 30) is None
    assert compose_email(event(status, 1), BOOKING).calendar == ""


def test_the_manage_link_is_in_both_parts_and_never_in_the_invite() -> None:
    sent = compose_email(event(BookingStatus.CONFIRMED, 1), BOOKING)
    token = derived_token("3f2b8c1e-7d4a-4c55-9a0e-2b6f1d9c8e71")
    assert token is not None
    link = f"https://citas.clinic.test/manage/3f2b8c1e-7d4a-4c55-9a0e-2b6f1d9c8e71#{token}"
    assert link in sent.body
    assert f'href="{link}"' in sent.html
    # Calendars are shared and synchronised: the key to the booking stays in the inbox.
    assert token not in sent.calendar
    cancelled = compose_email(event(BookingStatus.CANCELLED, 2), BOOKING)
    assert "/manage/" not in cancelled.body  # nothing is left to change


def test_without_a_key_emails_carry_no_link(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "manage_token_key", "")
    sent = compose_email(event(BookingStatus.CONFIRMED, 1), BOOKING)
    assert "/manage/" not in sent.body
    assert "/manage/" not in sent.html


def parts(message: EmailMessage) -> tuple[str, str, list[Calendar]]:
    """The text, the HTML and every calendar object (alternative and attachment) of an email."""
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None
    assert html is not None
    calendars = [
        parsed(part.get_content())
        for part in message.walk()
        if part.get_content_type() == "text/calendar"
    ]
    return text.get_content(), html.get_content(), calendars


async def test_the_patient_follows_the_emails_link_to_cancel_and_their_calendar_follows(
    client_and_handlers: AsyncClient,
    both_handlers: FastStream,
    mail_server: tuple[DevInbox, smtp_server.MailServer],
) -> None:
    client, (server, _) = client_and_handlers, mail_server
    sender = SmtpSender(server.url, CLINIC, settings.email_send_timeout)
    date = (utcnow() + timedelta(days=30)).replace(hour=10, minute=30, second=0, microsecond=0)
    with broker_of(both_handlers).provider.scope(default_email_sender, lambda: sender):
        created = await client.post(
            "/book",
            json={
                "patientName": "Ann Lee",
                "patientEmail": "ann@example.com",
                "date": date.isoformat(),
                "language": "en",
            },
        )
        assert created.status_code == 202, created.text
        [confirmation] = await wait_for(smtp_server.emails_in(server.folder, 1))

        text, html, invites = parts(confirmation)
        booking_id, token = LINK.findall(text)[0]
        assert (booking_id, token) == (created.json()["id"], created.json()["manageToken"])
        assert LINK.search(html)
        assert len(invites) == 2  # offered inline, and as invite.ics
        [requested] = invites[0].events
        assert invites[0].method == "REQUEST"
        assert requested.uid == booking_id
        assert requested.start == date

        # The link's token opens the booking, and cancels it.
        opened = await client.get(f"/booking/{booking_id}", headers=bearer(token))
        assert opened.json()["patientEmail"] == "ann@example.com"
        cancelled = await client.post(f"/booking/{booking_id}/cancel", headers=bearer(token))
        assert cancelled.json()["status"] == "cancelled"
        _, cancellation = await wait_for(smtp_server.emails_in(server.folder, 2))

    text, _, invites = parts(cancellation)
    assert "is cancelled" in text
    assert not LINK.search(text)
    [withdrawn] = invites[0].events
    assert invites[0].method == "CANCEL"
    assert withdrawn.uid == booking_id
    assert withdrawn.sequence > requested.sequence


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
