"""Operators list and replay parked messages: real broker, real database, real CLI."""

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator

import aio_pika
import pytest

from clinic.messages import BookAppointment, BookingStatus
from clinic.models import Booking
from clinic.parking import list_parked, replay_parked
from clinic.retries import PARKED_FROM_HEADER, PARKED_REASON_HEADER
from clinic.settings import settings
from clinic.topology import BOOKING_REQUESTS, broker, parking_publisher
from tests.conftest import BIN, Outbox
from tests.integration import parked_messages, queue, stored_booking, terminal, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_db")]


@pytest.fixture
async def publisher(rabbit: aio_pika.abc.AbstractChannel) -> AsyncIterator[None]:
    """The app's broker, connected for publishing only."""
    await broker.connect()
    try:
        yield
    finally:
        await broker.stop()


async def park_request(booking_id: str, reason: str = "PyMongoError: database down") -> None:
    """Park a booking request the way the workers do after their last retry."""
    await parking_publisher.publish(
        BookAppointment(booking_id=booking_id),
        headers={PARKED_FROM_HEADER: BOOKING_REQUESTS.name, PARKED_REASON_HEADER: reason},
        correlation_id=booking_id,
        message_id=booking_id,
    )


async def test_list_shows_parked_messages_with_their_reasons_and_leaves_them(
    rabbit: aio_pika.abc.AbstractChannel, publisher: None
) -> None:
    await park_request("b-1", "gave up after 3 retries: TimeoutError")
    await park_request("b-2", "NeverSucceeds: unknown booking b-2")

    first = await list_parked(settings.rabbit_url)
    again = await list_parked(settings.rabbit_url)

    assert [(m.id, m.booking_id, m.origin) for m in first] == [
        ("b-1", "b-1", "booking_requests"),
        ("b-2", "b-2", "booking_requests"),
    ]
    assert first[1].reason == "NeverSucceeds: unknown booking b-2"
    assert again == first


async def test_replay_by_id_sends_just_that_message_back_without_its_parking_headers(
    rabbit: aio_pika.abc.AbstractChannel, publisher: None
) -> None:
    await park_request("b-1")
    await park_request("b-2")

    [replayed] = await replay_parked(settings.rabbit_url, {"b-2"})

    assert replayed.id == "b-2"
    requests = await queue(rabbit, BOOKING_REQUESTS.name)
    message = await wait_for(lambda: requests.get(fail=False, no_ack=True))
    assert json.loads(message.body) == {"bookingId": "b-2"}
    assert message.correlation_id == "b-2"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert PARKED_REASON_HEADER not in (message.headers or {})
    assert [m.correlation_id for m in await parked_messages(rabbit)] == ["b-1"]


@pytest.mark.usefixtures("workers")
async def test_replaying_the_parking_queue_twice_decides_once_and_emails_once(
    outbox: Outbox, rabbit: aio_pika.abc.AbstractChannel
) -> None:
    # Parked while the database was down: the booking is still pending.
    booking = await stored_booking(days=20)
    await park_request(booking.id)

    assert len(await replay_parked(settings.rabbit_url)) == 1
    # A second replay of the same message (as if the first had died before its ack).
    await park_request(booking.id)
    assert len(await replay_parked(settings.rabbit_url, {booking.id})) == 1

    decided = await wait_for(lambda: terminal(booking.id))
    await wait_for(lambda: asyncio.sleep(0, result=len(outbox.sent) >= 1))
    await asyncio.sleep(1)  # room for a second decision or email, if there were one
    assert decided.status is BookingStatus.CONFIRMED
    current = await Booking.get(booking.id)
    assert current is not None
    assert current.updated_at == decided.updated_at
    assert len(outbox.sent) == 1
    assert await parked_messages(rabbit) == []


def clinic(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "clinic"), *args], capture_output=True, text=True, timeout=60)


async def test_the_parked_commands_print_and_replay(
    rabbit: aio_pika.abc.AbstractChannel, publisher: None
) -> None:
    await park_request("b-7", "gave up after 3 retries: TimeoutError")

    listed = await asyncio.to_thread(clinic, "parked", "list")
    refused = await asyncio.to_thread(clinic, "parked", "replay")
    unknown = await asyncio.to_thread(clinic, "parked", "replay", "no-such-id")
    replayed = await asyncio.to_thread(clinic, "parked", "replay", "--all")

    assert listed.returncode == 0, listed.stderr
    header, row, total = listed.stdout.splitlines()
    assert header.split()[:3] == ["ID", "FROM", "BOOKING"]
    assert row.split()[:3] == ["b-7", "booking_requests", "b-7"]
    assert row.endswith("gave up after 3 retries: TimeoutError")
    assert total == "1 parked message(s)"
    assert refused.returncode == 2
    assert "--all" in refused.stderr
    assert unknown.returncode == 1
    assert "no replayable parked message no-such-id" in unknown.stderr
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed b-7 to booking_requests" in replayed.stdout
    assert await parked_messages(rabbit) == []
