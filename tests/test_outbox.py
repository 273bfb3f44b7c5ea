"""The outbox relay publishes what the API could not, and only that."""

from datetime import timedelta

import pytest
from faststream.rabbit import TestRabbitBroker

from clinic.booking import give_up
from clinic.messages import BookingStatus
from clinic.models import Booking, PublishedMessage, utcnow
from clinic.outbox import relay_once
from clinic.topology import booking_request_publisher, broker, status_publisher

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
        await PublishedMessage(id=booking.id).insert()

    async with TestRabbitBroker(broker):
        assert await relay_once() == 1
        assert await relay_once() == 0
        booking_request_publisher.mock.assert_called_once_with({"bookingId": lost.id})

    # Settled: the next scans do not even look at them.
    stored = await Booking.find_all().to_list()
    assert all(booking.request_published for booking in stored)


async def test_a_decision_whose_announcement_kept_failing_is_announced_by_the_relay() -> None:
    booking = await overdue_booking(0)
    await Booking.get_pymongo_collection().update_one(
        {"_id": booking.id}, {"$set": {"status": "confirmed", "request_published": True}}
    )

    # The last attempt: the decision was stored, but publishing it kept failing.
    await give_up(booking.id)

    kept = await Booking.get(booking.id)
    assert kept is not None
    assert kept.status is BookingStatus.CONFIRMED, "a stored decision was overturned"
    assert kept.announce_after is not None
    await Booking.get_pymongo_collection().update_one(
        {"_id": booking.id}, {"$set": {"announce_after": utcnow() - timedelta(seconds=1)}}
    )
    async with TestRabbitBroker(broker):
        assert await relay_once() == 1
        assert await relay_once() == 0
        [call] = status_publisher.mock.call_args_list
        assert call.args[0]["status"] == "confirmed"


async def test_the_relay_settles_a_change_announced_before_its_mark_was_lost() -> None:
    booking = await overdue_booking(0)
    await Booking.get_pymongo_collection().update_one(
        {"_id": booking.id},
        {"$set": {"status": "cancelled", "announce_after": utcnow() - timedelta(seconds=1)}},
    )
    # Published and recorded, but the process died before clearing announce_after.
    await PublishedMessage(id=f"{booking.id}:cancelled").insert()

    async with TestRabbitBroker(broker):
        await relay_once()
        assert await relay_once() == 0, "the relay keeps coming back to it"
        status_publisher.mock.assert_not_called()

    settled = await Booking.get(booking.id)
    assert settled is not None
    assert settled.announce_after is None
