"""Both handlers, in memory (TestRabbitBroker) on the real database."""

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from unittest.mock import MagicMock

import pytest
from faststream import FastStream
from faststream.rabbit import RabbitBroker, TestRabbitBroker

from clinic.clock import utcnow
from clinic.domain.confirmation import clinic_confirmation
from clinic.domain.decisions import decide
from clinic.domain.scheduling import local_time
from clinic.messages import BookAppointment, BookingStatus, RejectionCode
from clinic.messaging.broker import Publishers
from clinic.messaging.topology import BOOKING_REQUESTS
from clinic.store import booking_decisions
from clinic.store.documents import Booking, SlotClaim
from tests.conftest import Mailbox, broker_of, publishers_of

pytestmark = pytest.mark.usefixtures("clean_db")


@pytest.fixture
async def broker(both_handlers: FastStream) -> AsyncIterator[RabbitBroker]:
    """The broker of both handlers, in memory."""
    async with TestRabbitBroker(broker_of(both_handlers)) as broker:
        yield broker


@pytest.fixture
def publishers(both_handlers: FastStream) -> Publishers:
    return publishers_of(both_handlers)


def mock_of(publishers: Publishers, name: str) -> MagicMock:
    """What the handlers published through one publisher (``status_changes``, ``parked``)."""
    mock: MagicMock | None = getattr(publishers, name).mock
    assert mock is not None
    return mock


THIS_MINUTE = utcnow().replace(second=0, microsecond=0)
"""Read once, so that two bookings meant for one time cannot straddle a minute."""


async def stored(date_offset: timedelta, name: str = "Juan Pérez") -> Booking:
    booking = Booking(
        patient_name=name,
        patient_email="juan@example.com",
        date=THIS_MINUTE + date_offset,
    )
    await booking.insert()
    return booking


async def request(broker: RabbitBroker, booking: Booking) -> None:
    await broker.publish(
        BookAppointment(booking_id=booking.id), BOOKING_REQUESTS, correlation_id=booking.id
    )


async def status_of(booking: Booking) -> Booking:
    current = await Booking.get(booking.id)
    assert current is not None
    return current


async def test_future_booking_is_confirmed_and_patient_emailed(
    broker: RabbitBroker, publishers: Publishers, mailbox: Mailbox
) -> None:
    booking = await stored(timedelta(days=7))
    await request(broker, booking)
    mock_of(publishers, "status_changes").assert_called_once()
    event = mock_of(publishers, "status_changes").call_args.args[0]

    current = await status_of(booking)
    assert current.status is BookingStatus.CONFIRMED
    assert current.reason is None
    assert event["bookingId"] == booking.id
    assert event["status"] == "confirmed"
    [email] = mailbox.sent
    assert email.to == "juan@example.com"
    assert email.subject.startswith("Su cita está confirmada")
    assert local_time(booking.date).strftime("%H:%M") in email.body  # the clinic's time
    assert current.doctor_id == "dr-test"
    assert "Dra. Prueba" in email.body
    assert booking.id in email.body


async def test_past_booking_is_rejected_with_reason(broker: RabbitBroker, mailbox: Mailbox) -> None:
    booking = await stored(-timedelta(hours=1))
    await request(broker, booking)

    current = await status_of(booking)
    assert current.status is BookingStatus.REJECTED
    assert current.reason_code is RejectionCode.DATE_IN_PAST
    assert current.reason == "The appointment date is in the past."
    [email] = mailbox.sent
    assert email.subject.startswith("No hemos podido reservar su cita")
    assert "Motivo: la fecha ya ha pasado." in email.body


async def test_second_booking_for_a_confirmed_time_is_rejected(
    broker: RabbitBroker, mailbox: Mailbox
) -> None:
    first = await stored(timedelta(days=3))
    second = await stored(timedelta(days=3), name="José Ñúñez")
    assert first.date == second.date
    await request(broker, first)
    await request(broker, second)

    assert (await status_of(first)).status is BookingStatus.CONFIRMED
    rejected = await status_of(second)
    assert rejected.status is BookingStatus.REJECTED
    assert rejected.reason_code is RejectionCode.SLOT_TAKEN
    assert [e.to for e in mailbox.sent] == ["juan@example.com", "juan@example.com"]


async def test_redelivered_request_changes_nothing_and_sends_nothing_twice(
    broker: RabbitBroker, publishers: Publishers, mailbox: Mailbox
) -> None:
    booking = await stored(timedelta(days=2))
    await request(broker, booking)
    first = await status_of(booking)
    await request(broker, booking)
    assert mock_of(publishers, "status_changes").call_count == 1

    again = await status_of(booking)
    assert again.status is BookingStatus.CONFIRMED
    assert again.updated_at == first.updated_at
    assert len(mailbox.sent) == 1


async def test_a_retried_request_announces_the_decision_its_failed_attempt_stored(
    broker: RabbitBroker, publishers: Publishers, mailbox: Mailbox
) -> None:
    # The first attempt stored the decision, then failed to announce it: no email yet.
    booking = await stored(timedelta(days=2))
    decided = await decide(booking)
    assert decided.status is BookingStatus.CONFIRMED
    died: dict[str, Any] = {
        "x-death": [{"queue": BOOKING_REQUESTS.name, "reason": "rejected", "count": 1}]
    }

    await broker.publish(BookAppointment(booking_id=booking.id), BOOKING_REQUESTS, headers=died)

    [event] = [c.args[0] for c in mock_of(publishers, "status_changes").call_args_list]
    assert (event["bookingId"], event["status"]) == (booking.id, "confirmed")
    assert len(mailbox.sent) == 1


async def test_racing_workers_confirm_a_booking_once(caplog: pytest.LogCaptureFixture) -> None:
    booking = await stored(timedelta(days=5))
    caplog.set_level(logging.INFO, "clinic.booking")
    results = await asyncio.gather(*(decide(booking) for _ in range(5)))
    assert {r.status for r in results} == {BookingStatus.CONFIRMED}
    assert len({r.updated_at for r in results}) == 1
    assert await SlotClaim.find_all().count() == 1
    # One of them decided it (and announces it); the others found it decided.
    decided = [r for r in caplog.records if r.getMessage() == f"booking {booking.id} confirmed"]
    assert len(decided) == 1, [r.getMessage() for r in decided]


async def test_deliveries_of_one_booking_in_one_batched_write_decide_it_once() -> None:
    booking, other = await stored(timedelta(days=5)), await stored(timedelta(days=6))
    confirm: dict[str, object] = {"status": BookingStatus.CONFIRMED, "request_due_at": None}
    # Called together, the six calls share one write.
    _, *won = await asyncio.gather(
        *(booking_decisions.move_if_pending(b.id, confirm) for b in [other, *[booking] * 5])
    )
    assert len([w for w in won if w is not None]) == 1, "a decision would be announced twice"
    decided = await status_of(booking)
    assert decided.revision == 1


async def test_two_bookings_racing_for_one_time_get_one_confirmation() -> None:
    bookings = [await stored(timedelta(days=9), name=f"Paciente {i}") for i in range(6)]
    results = await asyncio.gather(*(decide(b) for b in bookings))
    statuses = sorted(r.status.value for r in results)
    assert statuses == ["confirmed"] + ["rejected"] * 5


async def test_unknown_booking_is_parked_at_once(
    broker: RabbitBroker, publishers: Publishers
) -> None:
    await broker.publish(BookAppointment(booking_id="no-such-booking"), BOOKING_REQUESTS)
    mock_of(publishers, "parked").assert_called_once()
    mock_of(publishers, "status_changes").assert_not_called()


async def test_clinic_failure_on_the_last_attempt_rejects_the_booking(
    broker: RabbitBroker, publishers: Publishers, mailbox: Mailbox
) -> None:
    class ClinicDown:
        async def review(self, booking: Booking) -> None:
            raise ConnectionError("clinic system unreachable")

    booking = await stored(timedelta(days=4))
    last_attempt: dict[str, Any] = {
        "x-death": [{"queue": "booking_requests", "reason": "rejected", "count": 3}]
    }
    with broker.provider.scope(clinic_confirmation, ClinicDown):
        await broker.publish(
            BookAppointment(booking_id=booking.id), BOOKING_REQUESTS, headers=last_attempt
        )
    mock_of(publishers, "parked").assert_called_once()

    current = await status_of(booking)
    assert current.status is BookingStatus.REJECTED
    assert current.reason == "processing failed"
    assert [e.subject for e in mailbox.sent] == [mailbox.sent[0].subject]
    assert mailbox.sent[0].subject.startswith("No hemos podido reservar su cita")
