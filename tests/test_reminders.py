"""Reminders: one email a day (``CLINIC_REMINDER_BEFORE``) ahead of each confirmed
appointment, never for a cancelled one, and none for a booking made closer than that.

Both handlers run in this process on the real broker and database; the outbox relay
is run by hand with a clock at the reminder's time, so no test waits a day.
"""

from datetime import datetime, timedelta

import pytest
from faststream import FastStream

from clinic.clock import utcnow
from clinic.domain.announcements import announce_recorded
from clinic.domain.cancellation import cancel
from clinic.domain.email_content import compose_email
from clinic.domain.emails import email_once
from clinic.domain.outbox import Clock, oldest_unsent_age, relay_once
from clinic.domain.reminders import remind_older_bookings, reminder_event
from clinic.messages import BookingStatus, Language
from clinic.settings import Settings
from clinic.store.documents import Booking, MessageKind, OutboxRecord
from tests.conftest import Mailbox, publishers_of, vhost_rabbitmqctl
from tests.integration import stored_booking, wait_until_settled

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_db")]


async def confirmed(workers: FastStream, days: float = 3) -> Booking:
    """A booking ``days`` ahead, confirmed by the workers, its confirmation emailed."""
    stored = await stored_booking(days=0)
    await stored.set({"date": (utcnow() + timedelta(days=days)).replace(second=0, microsecond=0)})
    await publishers_of(workers).request_decision(stored.id)
    await wait_until_settled(vhost_rabbitmqctl)
    booking = await Booking.get(stored.id)
    assert booking is not None
    assert booking.status is BookingStatus.CONFIRMED
    return booking


async def reminders() -> list[OutboxRecord]:
    return await OutboxRecord.find(OutboxRecord.kind == MessageKind.REMINDER).to_list()


def at(moment: datetime) -> Clock:
    """A clock stopped at ``moment``, for the relay."""
    return lambda: moment


async def test_a_confirmed_appointment_is_reminded_once_a_day_ahead(
    workers: FastStream, mailbox: Mailbox
) -> None:
    booking = await confirmed(workers)
    publishers = publishers_of(workers)
    [record] = await reminders()
    assert record.due_at == booking.date - timedelta(hours=24)
    assert await oldest_unsent_age() == 0.0  # scheduled, not late

    assert await relay_once(publishers) == 0  # a day early: not yet
    assert await relay_once(publishers, at(record.due_at + timedelta(seconds=1))) == 1
    await wait_until_settled(vhost_rabbitmqctl)
    confirmation, reminder = mailbox.sent
    assert confirmation.subject.startswith("Su cita está confirmada: ")
    assert reminder.subject.startswith("Recordatorio de su cita: ")
    assert "Le recordamos su cita" in reminder.body
    assert "https://citas.clinic.test/manage/" in reminder.body
    assert reminder.calendar == ""  # the confirmation's invite is in the calendar already

    # Sent once: the relay has nothing more, and a copy of the announcement (a relay
    # that died before marking it sent) is not emailed again.
    assert await relay_once(publishers, at(record.due_at + timedelta(hours=1))) == 0
    await publishers.announce(reminder_event(booking, utcnow()))
    await wait_until_settled(vhost_rabbitmqctl)
    assert len(mailbox.sent) == 2


async def test_a_cancelled_appointment_gets_no_reminder(
    workers: FastStream, mailbox: Mailbox
) -> None:
    booking = await confirmed(workers)
    [record] = await reminders()
    cancelled, _ = await cancel(booking.id)
    assert cancelled is not None
    await announce_recorded(publishers_of(workers), cancelled)
    await wait_until_settled(vhost_rabbitmqctl)

    assert record.due_at is not None
    assert await relay_once(publishers_of(workers), at(record.due_at)) == 0
    await wait_until_settled(vhost_rabbitmqctl)
    assert [email.subject.split(":")[0] for email in mailbox.sent] == [
        "Su cita está confirmada",
        "Su cita está cancelada",
    ]
    assert await reminders() == []  # dropped, not left to be sent


async def test_a_reminder_announced_before_a_cancellation_is_not_emailed_after_it(
    workers: FastStream, mailbox: Mailbox
) -> None:
    booking = await confirmed(workers)
    announced = reminder_event(booking, utcnow())  # still in the queue when...
    await cancel(booking.id)  # ...the patient cancels
    assert await email_once(announced, mailbox) is False
    assert len(mailbox.sent) == 1  # the confirmation only


async def test_a_booking_made_within_a_day_of_its_appointment_gets_no_separate_reminder(
    workers: FastStream, mailbox: Mailbox
) -> None:
    await confirmed(workers, days=0.5)
    assert await reminders() == []
    assert len(mailbox.sent) == 1  # its confirmation is the reminder


async def test_bookings_confirmed_before_reminders_get_theirs_once() -> None:
    # As stored before bookings had a revision: confirmed, a week and an hour ahead.
    week, hour = utcnow() + timedelta(days=7), utcnow() + timedelta(hours=1)
    for when in (week, hour):
        old = Booking(patient_name="Ann Lee", patient_email="ann@example.com", date=when)
        raw = {**old.model_dump(by_alias=True), "status": "confirmed"}
        del raw["revision"]
        await Booking.get_pymongo_collection().insert_one(raw)

    assert await remind_older_bookings() == 1  # the one within the lead time gets none
    assert await remind_older_bookings() == 0  # found once
    [record] = await reminders()
    assert record.due_at is not None
    assert abs(record.due_at - (week - timedelta(hours=24))) < timedelta(seconds=1)
    assert record.revision == 0


@pytest.mark.parametrize("language", list(Language))
def test_the_reminder_names_the_doctor_and_the_time_in_the_patients_language(
    language: Language,
) -> None:
    booking = Booking.model_construct(
        id="b-1",
        patient_name="Ann Lee",
        patient_email="ann@example.com",
        date=datetime.fromisoformat("2027-06-14T08:30:00+00:00"),
        language=language,
        status=BookingStatus.CONFIRMED,
        doctor_name="Dra. Lucía García",
        revision=1,
    )
    email = compose_email(reminder_event(booking, utcnow()), booking)
    when = {Language.ES: "lunes, 14 de junio de 2027, 10:30", Language.EN: "Monday, June 14"}
    assert when[language] in email.subject
    assert "Dra. Lucía García" in email.body
    assert email.reference == "b-1.reminder-1"


def test_the_lead_time_is_seconds_or_an_iso_duration() -> None:
    assert Settings(reminder_before="3600").reminder_before == timedelta(hours=1)
    assert Settings(reminder_before="PT2H").reminder_before == timedelta(hours=2)
