"""Outages of the broker and the database, with the clinic's real processes running.

The broker tests restart a RabbitMQ node of their own (see ``tests.private_broker``);
the database test stops the test session's own database server, and starts it
again whatever happens.
"""

import asyncio
import itertools
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import aio_pika
import httpx
import pytest

from clinic.embedded_db import EmbeddedDatabase
from clinic.messages import BookAppointment, BookingStatus
from clinic.messaging.parking import list_parked
from clinic.messaging.topology import BOOKING_REQUESTS
from clinic.store.documents import Booking
from tests import private_broker
from tests.conftest import IN_CI, unavailable
from tests.integration import stored_booking
from tests.private_broker import PrivateRabbit
from tests.stack import Stack, log_count, wait_until_terminal

# Above the sum of the waits inside each test, so a wait fails with its own message.
pytestmark = [pytest.mark.faults, pytest.mark.timeout(360), pytest.mark.usefixtures("clean_db")]

RETRY_DELAY = 4.0
ATTEMPT_LINE = re.compile(r"^(\S+ \S+) \d+ WARNING clinic\.retries \[(\S+)\] attempt (\d+) failed")


@pytest.fixture
def private_rabbit() -> Iterator[PrivateRabbit]:
    """A broker node of the test's own, removed afterwards."""
    if not private_broker.available():
        if IN_CI:
            pytest.fail("CI must run the broker restart tests: RabbitMQ and root are needed")
        pytest.skip("needs RabbitMQ installed and root, to run a private broker node")
    node = PrivateRabbit()
    node.start()
    try:
        yield node
    finally:
        node.remove()


def attempt_times(log: Path, booking_id: str) -> list[datetime]:
    """When each failed attempt at ``booking_id`` was logged by a booking worker."""
    times = []
    for line in log.read_text().splitlines():
        if (match := ATTEMPT_LINE.match(line)) and match[2] == booking_id:
            times.append(datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f"))
    return times


async def publish_raw(url: str, body: bytes, queue: str, correlation_id: str = "") -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(
                body,
                correlation_id=correlation_id or None,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=queue,
        )


@pytest.mark.parametrize("restart", ["graceful", "kill -9"])
async def test_broker_restart_loses_nothing_and_everyone_reconnects(
    restart: str, private_rabbit: PrivateRabbit, tmp_path: Path
) -> None:
    stack = Stack(
        tmp_path,
        private_rabbit.ctl,
        CLINIC_RABBIT_URL=private_rabbit.url,
        CLINIC_RETRY_DELAY=str(RETRY_DELAY),
        CLINIC_MAX_RETRIES="2",
        # Long enough to read the queues (rabbitmqctl, seconds on a busy machine) before
        # the first bookings are decided.
        CLINIC_CONFIRM_DELAY_MIN="4",
        CLINIC_CONFIRM_DELAY_MAX="4",
    )
    try:
        api = stack.api()
        booking_worker = stack.booking_worker()
        notification_worker = stack.notification_worker()
        await stack.wait_until_ready()
        # Waiting in each queue when the broker goes down: the parking queue...
        await publish_raw(private_rabbit.url, b"{not json", BOOKING_REQUESTS.name)
        # ...booking_retry (this one fails every attempt)...
        [buggy] = await stack.book(name="Bug Trigger")
        # ...and booking_requests: prefetch bookings in the confirmation delay, more queued.
        ids = await stack.book(8)
        # Published right after their 202s; none is acked before its 4 s delay ends.
        await stack.wait_for_depths(
            {"parked_messages": 1, "booking_retry": 1, "booking_requests": 8}, within=3.5
        )

        if restart == "graceful":
            private_rabbit.stop()
        else:
            private_rabbit.kill()
        async with httpx.AsyncClient(base_url=stack.base_url) as client:
            ready = await client.get("/ready")
        # Accepted while the broker is down: stored, and published by the relay later.
        [while_down] = await stack.book()
        private_rabbit.start()

        bookings = await wait_until_terminal([*ids, while_down, buggy], within=60)
        assert ready.status_code == 503
        assert ready.json()["broker"] == "down"
        outcome = {b.id: b for b in bookings}
        assert {outcome[i].status for i in [*ids, while_down]} == {BookingStatus.CONFIRMED}
        assert outcome[buggy].reason == "processing failed"
        await stack.wait_for_emails([*ids, while_down, buggy])
        [after] = await stack.book()  # the API publishes again by itself
        await wait_until_terminal([after], within=20)
        await stack.wait_until_settled()

        assert all(service.running for service in (api, booking_worker, notification_worker))
        assert set(stack.emails().values()) == {1}
        assert len(stack.emails()) == len(ids) + 3
        depths = stack.queue_depths()
        assert depths["parked_messages"] == 2, depths  # the poison message and the buggy booking
        assert depths["booking_requests"] == depths["booking_retry"] == 0, depths
        attempts = attempt_times(booking_worker.log, buggy)
        assert len(attempts) == 2, booking_worker.log.read_text()
        gap = (attempts[1] - attempts[0]).total_seconds()
        assert gap >= 0.9 * RETRY_DELAY, f"retried after {gap:.1f}s"
        assert log_count(booking_worker.log, "Traceback") <= 20
        # The bookings in their delay were cancelled, unacknowledged, and came back: each
        # a WARNING of one line, not an ERROR with a traceback; as is each channel that
        # could not reopen before its connection did. Only the connection's loss is an ERROR.
        services = (api, booking_worker, notification_worker)
        everyone = "".join(service.log.read_text(errors="replace") for service in services)
        assert log_count(booking_worker.log, "handling interrupted (CancelledError") >= 1
        errors = [line for line in everyone.splitlines() if " ERROR " in line]
        assert not [e for e in errors if "faststream.access" in e or "aio_pika.tools" in e], errors
    finally:
        stack.stop_all()


async def test_database_down_for_30_seconds(
    mongo_server: EmbeddedDatabase | None,
    own_vhost: tuple[str, Callable[..., str]],
    tmp_path: Path,
) -> None:
    if mongo_server is None:
        unavailable("stops the test session's own database server: unset CLINIC_MONGO_URL")
    rabbit_url, rabbitmqctl = own_vhost
    retry_delay, max_retries = 5.0, 3
    stack = Stack(
        tmp_path,
        rabbitmqctl,
        CLINIC_RABBIT_URL=rabbit_url,
        CLINIC_RETRY_DELAY=str(retry_delay),
        CLINIC_MAX_RETRIES=str(max_retries),
        # Long enough to read the queue (rabbitmqctl, seconds on a busy machine) after the
        # refusal, before the early bookings' first attempts fail and move to the retry queue.
        CLINIC_CONFIRM_DELAY_MIN="4",
        CLINIC_CONFIRM_DELAY_MAX="4",
    )
    try:
        stack.api()
        booking_worker = stack.booking_worker()
        stack.notification_worker()
        await stack.wait_until_ready()
        # In the confirmation delay when the database goes: these run out of retries.
        early = await stack.book(3)
        # Stored before, requested during the outage: these are mid-retry at recovery.
        late = [await stored_booking(days=60 + i) for i in range(3)]
        await asyncio.sleep(0.5)

        mongo_server.stop()
        outage_started = time.monotonic()
        try:
            async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as client:
                refused = await client.post(
                    "/book",
                    json={
                        "patientName": "Outage Patient",
                        "patientEmail": "outage@example.com",
                        "date": stack.next_date(),
                    },
                )
            depth_after_refusal = stack.queue_depths()["booking_requests"]
            await asyncio.sleep(20 - (time.monotonic() - outage_started))
            for booking in late:
                await publish_raw(
                    rabbit_url,
                    BookAppointment(booking_id=booking.id).model_dump_json(by_alias=True).encode(),
                    BOOKING_REQUESTS.name,
                    correlation_id=booking.id,
                )
            await asyncio.sleep(30 - (time.monotonic() - outage_started))
        finally:
            mongo_server.start()

        assert refused.status_code == 503
        assert refused.json() == {
            "detail": "The booking database is unavailable; please try again shortly."
        }
        assert depth_after_refusal == 3, "the refused booking was published"
        finished = await wait_until_terminal([b.id for b in late], within=30)
        assert {b.status for b in finished} == {BookingStatus.CONFIRMED}
        await stack.wait_for_emails([b.id for b in late])
        for booking_id in early:
            stuck = await Booking.get(booking_id)
            assert stuck is not None
            assert stuck.status is BookingStatus.PENDING
            attempts = attempt_times(booking_worker.log, booking_id)
            assert len(attempts) == max_retries, "a hot loop, or missing retries"
            gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(attempts)]
            assert min(gaps) >= 0.9 * retry_delay, gaps
        parked = await list_parked(rabbit_url)
        assert sorted(m.booking_id for m in parked) == sorted(early)
        for message in parked:
            assert message.reason.startswith("gave up after 3 retries"), message.reason
        assert await Booking.find(Booking.patient_name == "Outage Patient").count() == 0
        # Bounded logging: a line per failed attempt, a traceback per parked message.
        records = [line for line in booking_worker.log.read_text().splitlines() if line[:2] == "20"]
        assert len(records) < 2 * (1 + max_retries) * (len(early) + len(late)) + 10, records
        assert log_count(booking_worker.log, "Traceback (most recent call last)") <= 2 * len(early)

        # Once the cause is fixed, the operator re-drives them.
        assert (await asyncio.to_thread(stack.clinic, "parked", "replay", "--all")).returncode == 0
        redriven = await wait_until_terminal(early, within=30)
        assert {b.status for b in redriven} == {BookingStatus.CONFIRMED}
        await stack.wait_for_emails([*early, *(b.id for b in late)])
        await stack.wait_until_settled()
        assert set(stack.emails().values()) == {1}
    finally:
        stack.stop_all()
