"""Operators list and replay parked messages: real broker, real database, real CLI."""

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator

import aio_pika
import pytest
from faststream import FastStream

from clinic.domain.emails import default_email_sender
from clinic.mail import Email
from clinic.messages import BookAppointment, BookingStatus
from clinic.messaging.broker import Publishers, new_broker
from clinic.messaging.parking import list_parked, parked_about, replay_parked
from clinic.messaging.retries import PARKED_FROM_HEADER, PARKED_REASON_HEADER
from clinic.messaging.topology import BOOKING_REQUESTS
from clinic.settings import settings
from clinic.store.documents import Booking
from tests.conftest import BIN, Mailbox, broker_of, publishers_of, vhost_rabbitmqctl
from tests.integration import (
    parked_messages,
    queue,
    stored_booking,
    terminal,
    wait_for,
    wait_until_settled,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_db")]


@pytest.fixture
async def publishers(rabbit: aio_pika.abc.AbstractChannel) -> AsyncIterator[Publishers]:
    """The clinic's publishers on a broker connected for publishing only."""
    broker = new_broker()
    publishers = Publishers.on(broker)
    await broker.connect()
    try:
        yield publishers
    finally:
        await broker.stop()


async def park_request(
    publishers: Publishers, booking_id: str, reason: str = "PyMongoError: database down"
) -> None:
    """Park a booking request the way the workers do after their last retry."""
    await publishers.parked.publish(
        BookAppointment(booking_id=booking_id),
        headers={PARKED_FROM_HEADER: BOOKING_REQUESTS.name, PARKED_REASON_HEADER: reason},
        correlation_id=booking_id,
        message_id=booking_id,
    )


async def test_list_shows_parked_messages_with_their_reasons_and_leaves_them(
    rabbit: aio_pika.abc.AbstractChannel, publishers: Publishers
) -> None:
    await park_request(publishers, "b-1", "gave up after 3 retries: TimeoutError")
    await park_request(publishers, "b-2", "NeverSucceeds: unknown booking b-2")

    first = await list_parked(settings.rabbit_url)
    again = await list_parked(settings.rabbit_url)

    assert [(m.id, m.booking_id, m.origin) for m in first] == [
        ("b-1", "b-1", "booking_requests"),
        ("b-2", "b-2", "booking_requests"),
    ]
    assert first[1].reason == "NeverSucceeds: unknown booking b-2"
    assert again == first


async def test_replay_by_id_sends_just_that_message_back_without_its_parking_headers(
    rabbit: aio_pika.abc.AbstractChannel, publishers: Publishers
) -> None:
    await park_request(publishers, "b-1")
    await park_request(publishers, "b-2")

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
    mailbox: Mailbox, rabbit: aio_pika.abc.AbstractChannel, publishers: Publishers
) -> None:
    # Parked while the database was down: the booking is still pending.
    booking = await stored_booking(days=20)
    await park_request(publishers, booking.id)

    assert len(await replay_parked(settings.rabbit_url)) == 1
    # A second replay of the same message (as if the first had died before its ack).
    await park_request(publishers, booking.id)
    assert len(await replay_parked(settings.rabbit_url, {booking.id})) == 1

    decided = await wait_for(lambda: terminal(booking.id))
    await wait_for(lambda: asyncio.sleep(0, result=len(mailbox.sent) >= 1))
    await wait_until_settled(vhost_rabbitmqctl)  # past where a second one could come
    assert decided.status is BookingStatus.CONFIRMED
    current = await Booking.get(booking.id)
    assert current is not None
    assert current.updated_at == decided.updated_at
    assert len(mailbox.sent) == 1
    assert await parked_messages(rabbit) == []


async def test_an_email_out_of_retries_is_parked_and_a_replay_starts_its_count_afresh(
    workers: FastStream, mailbox: Mailbox, rabbit: aio_pika.abc.AbstractChannel
) -> None:
    attempts: list[int] = []
    down = asyncio.Event()
    down.set()

    class FlakyMailServer(Mailbox):
        async def send(self, email: Email) -> None:
            attempts.append(len(attempts) + 1)
            if down.is_set():
                raise ConnectionError("mail server unreachable")
            await mailbox.send(email)

    booking = await stored_booking(days=25)
    server = FlakyMailServer()
    with broker_of(workers).provider.scope(default_email_sender, lambda: server):
        await publishers_of(workers).request_decision(booking.id)
        [parked] = await wait_for(lambda: list_parked(settings.rabbit_url), within=30)
        assert parked.origin == "email_notifications"
        assert parked.reason.startswith(f"gave up after {settings.max_retries} retries")
        # Kept until an operator acts, so it holds nothing that names the patient.
        [held] = await parked_about(settings.rabbit_url, {booking.id})
        for personal in (booking.patient_name, booking.patient_email):
            assert personal not in json.dumps(held, ensure_ascii=False)
        assert len(attempts) == 1 + settings.max_retries
        assert mailbox.sent == []

        # Fixed, but failing once more: a replay that kept its old count would be parked
        # again at once; with a fresh count it is retried, and sent.
        attempts.clear()
        down.clear()
        server_fails_once = asyncio.Event()

        class OnceMore(FlakyMailServer):
            async def send(self, email: Email) -> None:
                if not server_fails_once.is_set():
                    server_fails_once.set()
                    attempts.append(1)
                    raise ConnectionError("mail server unreachable, once more")
                await mailbox.send(email)

        fixed = OnceMore()
        with broker_of(workers).provider.scope(default_email_sender, lambda: fixed):
            assert [m.id for m in await replay_parked(settings.rabbit_url)] == [parked.id]
            await wait_for(lambda: asyncio.sleep(0, result=len(mailbox.sent) == 1), within=30)
            await wait_until_settled(vhost_rabbitmqctl)

    assert attempts == [1]
    assert await parked_messages(rabbit) == []
    assert len(mailbox.sent) == 1


def clinic(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "clinic"), *args], capture_output=True, text=True, timeout=60)


async def test_the_parked_commands_print_and_replay(
    rabbit: aio_pika.abc.AbstractChannel, publishers: Publishers
) -> None:
    await park_request(publishers, "b-7", "gave up after 3 retries: TimeoutError")

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
