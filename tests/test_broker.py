"""Against the real RabbitMQ (the session's own vhost) and the real database server."""

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aio_pika
import pytest
from fastapi import FastAPI
from faststream import FastStream
from httpx import AsyncClient
from pymongo import AsyncMongoClient

from clinic.api import create_app
from clinic.api.main import lifespan
from clinic.clock import utcnow
from clinic.domain.confirmation import clinic_confirmation
from clinic.domain.hand_overs import handed_over
from clinic.domain.outbox import relay_once
from clinic.embedded_db import EmbeddedDatabase
from clinic.messages import BookingStatus, BookingStatusChanged
from clinic.messaging.broker import Publishers
from clinic.messaging.retries import PARKED_FROM_HEADER, PARKED_REASON_HEADER
from clinic.messaging.topology import BOOKING_REQUESTS, NOTIFICATIONS, declare_topology
from clinic.settings import settings
from clinic.store.documents import Booking
from tests.conftest import HandedOver, Mailbox, broker_of, publishers_of, unavailable
from tests.integration import parked_messages, queue, stored_booking, terminal, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("rabbit_vhost", "clean_db")]

FUTURE = (utcnow() + timedelta(days=30)).strftime("%Y-%m-%dT10:30:00Z")


def request_deaths(headers: dict[str, Any]) -> int:
    return sum(
        d["count"]
        for d in headers.get("x-death", [])
        if d["queue"] == "booking_requests" and d["reason"] == "rejected"
    )


async def test_failing_booking_is_retried_through_booking_retry_then_parked_and_rejected(
    workers: FastStream, mailbox: Mailbox, rabbit: aio_pika.abc.AbstractChannel
) -> None:
    broker = broker_of(workers)
    attempts: list[tuple[float, dict[str, Any]]] = []

    class ClinicDown:
        async def review(self, booking: Booking) -> None:
            attempts.append((time.monotonic(), dict(broker.context.get_local("message").headers)))
            raise ConnectionError("clinic system unreachable")

    booking = await stored_booking()
    with broker.provider.scope(clinic_confirmation, ClinicDown):
        await publishers_of(workers).request_decision(booking.id)
        rejected = await wait_for(lambda: terminal(booking.id), within=30)

    assert rejected.status is BookingStatus.REJECTED
    assert rejected.reason == "processing failed"
    # 1 attempt + CLINIC_MAX_RETRIES retries, each counted by the broker's x-death.
    assert [request_deaths(h) for _, h in attempts] == [0, 1, 2, 3]
    assert all(
        any(d["queue"] == "booking_retry" and d["reason"] == "expired" for d in h["x-death"])
        for _, h in attempts[1:]
    )
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(attempts)]
    assert min(gaps) >= settings.retry_delay * 0.9
    [parked] = await wait_for(lambda: parked_messages(rabbit))
    assert parked.headers[PARKED_FROM_HEADER] == "booking_requests"
    assert "gave up after 3 retries" in str(parked.headers[PARKED_REASON_HEADER])
    assert "ConnectionError" in str(parked.headers[PARKED_REASON_HEADER])
    assert parked.correlation_id == booking.id
    assert json.loads(parked.body) == {"bookingId": booking.id}
    await wait_for(lambda: asyncio.sleep(0, result=len(mailbox.sent) == 1))
    assert mailbox.sent[0].subject.startswith("No hemos podido reservar su cita")


async def test_poison_messages_are_parked_at_once_while_others_flow(
    workers: FastStream, mailbox: Mailbox, rabbit: aio_pika.abc.AbstractChannel
) -> None:
    broker = broker_of(workers)
    good = await stored_booking(days=12)
    started = time.monotonic()
    for body in (b"{not json", b'{"patient": "no bookingId"}', b'{"bookingId": "ghost"}'):
        await broker.publish(body, BOOKING_REQUESTS, content_type="application/json", persist=True)
    await publishers_of(workers).request_decision(good.id)

    confirmed = await wait_for(lambda: terminal(good.id))
    parked: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def three_parked() -> bool:
        parked.extend(await parked_messages(rabbit))
        return len(parked) == 3

    await wait_for(three_parked, within=10)
    assert time.monotonic() - started < settings.retry_delay * 3
    assert confirmed.status is BookingStatus.CONFIRMED
    reasons = sorted(str(m.headers[PARKED_REASON_HEADER]) for m in parked)
    assert any("JSONDecodeError" in r for r in reasons), reasons
    assert any("ValidationError" in r for r in reasons), reasons
    assert any("unknown booking ghost" in r for r in reasons), reasons
    assert not any("gave up" in r for r in reasons)
    requests = await queue(rabbit, BOOKING_REQUESTS.name)
    assert requests.declaration_result.message_count == 0


async def test_a_worker_handles_prefetch_bookings_at_once_and_no_more(
    workers: FastStream, mailbox: Mailbox
) -> None:
    broker = broker_of(workers)
    in_flight, peak = 0, 0
    release = asyncio.Event()

    class BusyClinic:
        async def review(self, booking: Booking) -> None:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                await asyncio.wait_for(release.wait(), 20)
            finally:
                in_flight -= 1

    bookings = [await stored_booking(days=40 + i) for i in range(settings.prefetch * 2 + 1)]
    with broker.provider.scope(clinic_confirmation, BusyClinic):
        for booking in bookings:
            await publishers_of(workers).request_decision(booking.id)
        await wait_for(lambda: asyncio.sleep(0, result=in_flight == settings.prefetch))
        await asyncio.sleep(0.5)  # room for a worker that ignores prefetch to take more
        assert peak == settings.prefetch
        release.set()
        for booking in bookings:
            assert (
                await wait_for(lambda b=booking: terminal(b.id))
            ).status is BookingStatus.CONFIRMED


async def test_status_changes_reach_every_queue_bound_to_the_fanout(
    workers: FastStream, mailbox: Mailbox, rabbit: aio_pika.abc.AbstractChannel
) -> None:
    audit = await rabbit.declare_queue(exclusive=True)
    await audit.bind(NOTIFICATIONS.name)
    booking = await stored_booking(days=14)
    await publishers_of(workers).request_decision(booking.id)

    message = await wait_for(lambda: audit.get(fail=False, no_ack=True))
    event = BookingStatusChanged.model_validate_json(message.body)
    assert event.booking_id == booking.id
    assert event.status is BookingStatus.CONFIRMED
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.correlation_id == booking.id
    await wait_for(lambda: asyncio.sleep(0, result=len(mailbox.sent) == 1))
    assert mailbox.sent[0].to == "juan@example.com"


@pytest.fixture
async def live_app(
    clean_db: AsyncMongoClient[Any], rabbit: aio_pika.abc.AbstractChannel
) -> AsyncIterator[FastAPI]:
    """The API with its real lifespan: real broker connection, its own database client."""
    app = create_app()
    async with lifespan(app):
        yield app


@pytest.fixture
async def live_api(live_app: FastAPI) -> AsyncIterator[AsyncClient]:
    """An HTTP client of the live API."""
    transport = HandedOver(app=live_app)
    async with AsyncClient(transport=transport, base_url="http://clinic") as client:
        yield client


async def test_accepted_booking_is_queued_persistently(
    live_api: AsyncClient, rabbit: aio_pika.abc.AbstractChannel
) -> None:
    response = await live_api.post(
        "/book", json={"patientName": "Ana", "patientEmail": "ana@example.com", "date": FUTURE}
    )
    assert response.status_code == 202
    booking_id = response.json()["id"]
    requests = await queue(rabbit, BOOKING_REQUESTS.name)
    message = await wait_for(lambda: requests.get(fail=False, no_ack=True))
    assert json.loads(message.body) == {"bookingId": booking_id}
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.correlation_id == booking_id


async def test_ready_checks_broker_and_database(live_api: AsyncClient) -> None:
    response = await live_api.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "broker": "up", "database": "up"}


async def test_booking_stays_accepted_when_its_publish_fails_and_the_relay_publishes_it(
    live_app: FastAPI,
    live_api: AsyncClient,
    rabbit: aio_pika.abc.AbstractChannel,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    publishers: Publishers = live_app.state.publishers
    # A grace period no test run outlasts: the relay must leave the request alone.
    monkeypatch.setattr(settings, "outbox_grace", 600)
    await rabbit.queue_delete(BOOKING_REQUESTS.name)
    try:
        response = await live_api.post(
            "/book", json={"patientName": "Ana", "patientEmail": "ana@example.com", "date": FUTURE}
        )
    finally:
        await declare_topology()

    # Stored durably, so accepted: the broker's refusal is the relay's problem.
    assert response.status_code == 202
    booking_id = response.json()["id"]
    [booking] = await Booking.find_all().to_list()
    assert booking.status is BookingStatus.PENDING
    assert booking.request_due_at is not None, "nobody would publish it"
    await live_app.state.hand_overs.record_mark()
    current = await Booking.get(booking_id)
    assert current is not None
    assert not await handed_over(current.hand_over), "recorded as published"
    [warning] = [r for r in caplog.records if "request not published yet" in r.getMessage()]
    assert "NO_ROUTE" in warning.getMessage()
    requests = await queue(rabbit, BOOKING_REQUESTS.name)
    assert requests.declaration_result.message_count == 0

    assert await relay_once(publishers) == 0, "published before its grace period was over"
    await Booking.get_pymongo_collection().update_one(
        {"_id": booking_id}, {"$set": {"request_due_at": utcnow() - timedelta(seconds=1)}}
    )  # the grace period is over
    assert await relay_once(publishers) == 1
    assert await relay_once(publishers) == 0, "published twice"
    message = await wait_for(lambda: requests.get(fail=False, no_ack=True))
    assert json.loads(message.body) == {"bookingId": booking_id}
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.correlation_id == booking_id
    settled = await Booking.get(booking_id)
    assert settled is not None
    assert settled.request_due_at is None, "the relay would come back to it"


async def test_database_down_answers_503_json_and_publishes_nothing(
    live_api: AsyncClient,
    mongo_server: EmbeddedDatabase | None,
    rabbit: aio_pika.abc.AbstractChannel,
) -> None:
    if mongo_server is None:
        unavailable("stops the test session's own database server: unset CLINIC_MONGO_URL")
    mongo_server.stop()
    try:
        response = await live_api.post(
            "/book", json={"patientName": "Ana", "patientEmail": "ana@example.com", "date": FUTURE}
        )
        ready = await live_api.get("/ready")
    finally:
        mongo_server.start()
    assert response.status_code == 503
    assert response.json() == {
        "detail": "The booking database is unavailable; please try again shortly."
    }
    assert ready.status_code == 503
    assert ready.json()["database"] == "down"
    requests = await queue(rabbit, BOOKING_REQUESTS.name)
    assert requests.declaration_result.message_count == 0
