"""The outbox relay publishes what the API could not, and only that."""

from datetime import timedelta

import pytest
from faststream.rabbit import TestRabbitBroker

from clinic.models import Booking, PublishedRequest, utcnow
from clinic.outbox import relay_once
from clinic.topology import booking_request_publisher, broker

pytestmark = pytest.mark.usefixtures("clean_db")


async def overdue_booking(n: int) -> Booking:
    booking = Booking(
        patient_name=f"Paciente {n}",
        patient_email=f"p{n}@example.com",
        date=utcnow() + timedelta(days=3, minutes=n),
        publish_after=utcnow() - timedelta(seconds=1),
    )
    await booking.insert()
    return booking


async def test_the_relay_publishes_only_requests_the_broker_never_confirmed() -> None:
    confirmed = [await overdue_booking(n) for n in range(3)]
    lost = await overdue_booking(3)
    for booking in confirmed:
        await PublishedRequest(id=booking.id).insert()

    async with TestRabbitBroker(broker):
        assert await relay_once() == 1
        assert await relay_once() == 0
        booking_request_publisher.mock.assert_called_once_with({"bookingId": lost.id})

    # Settled: the next scans do not even look at them.
    stored = await Booking.find_all().to_list()
    assert all(booking.request_published for booking in stored)
