"""Booking and notification handlers, in memory (TestRabbitBroker) on the real database."""

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from faststream.rabbit import TestRabbitBroker

from clinic.booking import decide
from clinic.confirmation import clinic_confirmation
from clinic.handlers import app  # noqa: F401  (registers both handlers on the broker)
from clinic.messages import BookAppointment, BookingStatus, RejectionCode
from clinic.models import Booking, SlotClaim, utcnow
from clinic.scheduling import local_time
from clinic.topology import (
    BOOKING_REQUESTS,
    broker,
    parking_publisher,
    status_publisher,
)
from tests.conftest import Outbox

pytestmark = pytest.mark.usefixtures("clean_db")


async def stored(date_offset: timedelta, name: str = "Juan Pérez") -> Booking:
    booking = Booking(
        patient_name=name,
        patient_email="juan@example.com",
        date=(utcnow() + date_offset).replace(second=0, microsecond=0),
    )
    await booking.insert()
    return booking


async def request(booking: Booking) -> None:
    await broker.publish(
        BookAppointment(booking_id=booking.id), BOOKING_REQUESTS, correlation_id=booking.id
    )


async def status_of(booking: Booking) -> Booking:
    current = await Booking.get(booking.id)
    assert current is not None
    return current


async def test_future_booking_is_confirmed_and_patient_emailed(outbox: Outbox) -> None:
    booking = await stored(timedelta(days=7))
    async with TestRabbitBroker(broker):
        await request(booking)
        status_publisher.mock.assert_called_once()
        event = status_publisher.mock.call_args.args[0]

    current = await status_of(booking)
    assert current.status is BookingStatus.CONFIRMED
    assert current.reason is None
    assert current.announce_after is None  # announced: nothing left for the outbox relay
    assert event["bookingId"] == booking.id
    assert event["status"] == "confirmed"
    [email] = outbox.sent
    assert email.to == "juan@example.com"
    assert "confirmed" in email.subject
    assert local_time(booking.date).strftime("%H:%M") in email.body  # the clinic's time
    assert current.doctor_id == "dr-test"
    assert "Dra. Prueba" in email.body
    assert booking.id in email.body


async def test_past_booking_is_rejected_with_reason(outbox: Outbox) -> None:
    booking = await stored(-timedelta(hours=1))
    async with TestRabbitBroker(broker):
        await request(booking)

    current = await status_of(booking)
    assert current.status is BookingStatus.REJECTED
    assert current.reason_code is RejectionCode.DATE_IN_PAST
    assert current.reason == "The appointment date is in the past."
    [email] = outbox.sent
    assert "could not be booked" in email.subject
    assert "in the past" in email.body


async def test_second_booking_for_a_confirmed_time_is_rejected(outbox: Outbox) -> None:
    first = await stored(timedelta(days=3))
    second = await stored(timedelta(days=3), name="José Ñúñez")
    assert first.date == second.date
    async with TestRabbitBroker(broker):
        await request(first)
        await request(second)

    assert (await status_of(first)).status is BookingStatus.CONFIRMED
    rejected = await status_of(second)
    assert rejected.status is BookingStatus.REJECTED
    assert rejected.reason_code is RejectionCode.SLOT_TAKEN
    assert [e.to for e in outbox.sent] == ["juan@example.com", "juan@example.com"]


async def test_redelivered_request_changes_nothing_and_sends_nothing_twice(
    outbox: Outbox,
) -> None:
    booking = await stored(timedelta(days=2))
    async with TestRabbitBroker(broker):
        await request(booking)
        first = await status_of(booking)
        await request(booking)
        assert status_publisher.mock.call_count == 1

    again = await status_of(booking)
    assert again.status is BookingStatus.CONFIRMED
    assert again.updated_at == first.updated_at
    assert len(outbox.sent) == 1


async def test_racing_workers_confirm_a_booking_once() -> None:
    booking = await stored(timedelta(days=5))
    results = await asyncio.gather(*(decide(booking) for _ in range(5)))
    assert {r.status for r in results} == {BookingStatus.CONFIRMED}
    assert len({r.updated_at for r in results}) == 1
    assert await SlotClaim.find_all().count() == 1


async def test_two_bookings_racing_for_one_time_get_one_confirmation() -> None:
    bookings = [await stored(timedelta(days=9), name=f"Paciente {i}") for i in range(6)]
    results = await asyncio.gather(*(decide(b) for b in bookings))
    statuses = sorted(r.status.value for r in results)
    assert statuses == ["confirmed"] + ["rejected"] * 5


async def test_unknown_booking_is_parked_at_once() -> None:
    async with TestRabbitBroker(broker):
        await broker.publish(BookAppointment(booking_id="no-such-booking"), BOOKING_REQUESTS)
        parking_publisher.mock.assert_called_once()
        status_publisher.mock.assert_not_called()


async def test_clinic_failure_on_the_last_attempt_rejects_the_booking(outbox: Outbox) -> None:
    class ClinicDown:
        async def review(self, booking: Booking) -> None:
            raise ConnectionError("clinic system unreachable")

    booking = await stored(timedelta(days=4))
    last_attempt: dict[str, Any] = {
        "x-death": [{"queue": "booking_requests", "reason": "rejected", "count": 3}]
    }
    with broker.provider.scope(clinic_confirmation, ClinicDown):
        async with TestRabbitBroker(broker):
            await broker.publish(
                BookAppointment(booking_id=booking.id), BOOKING_REQUESTS, headers=last_attempt
            )
            parking_publisher.mock.assert_called_once()

    current = await status_of(booking)
    assert current.status is BookingStatus.REJECTED
    assert current.reason == "processing failed"
    assert [e.subject for e in outbox.sent] == [outbox.sent[0].subject]
    assert "could not be booked" in outbox.sent[0].subject
