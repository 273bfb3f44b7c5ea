"""/metrics on the API and on each worker: one real booking through real processes, scraped.

The in-process tests below count what one booking through real processes does not
show: cancellations, retries and parked messages, and the backlog gauges'
database reads.
"""

import math
from datetime import timedelta
from typing import Any

import httpx
import pytest
from faststream import FastStream
from faststream.rabbit import TestRabbitBroker
from httpx import AsyncClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from clinic.clock import utcnow
from clinic.domain.confirmation import clinic_confirmation
from clinic.messages import BookAppointment, BookingStatus
from clinic.messaging.topology import BOOKING_REQUESTS
from clinic.store import outbox
from clinic.store.documents import Booking, MessageKind, OutboxRecord
from tests.conftest import broker_of
from tests.stack import Stack, wait_until_terminal

pytestmark = pytest.mark.usefixtures("clean_db")

PATIENT = "Juan Pérez"
EMAIL = "juan@example.com"


class Scrape:
    """One scrape of a /metrics page: every sample, by name and labels."""

    def __init__(self, url: str) -> None:
        answer = httpx.get(url, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/plain")
        self.samples = [
            sample
            for family in text_string_to_metric_families(answer.text)
            for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sum of ``name``'s samples that carry ``labels`` (0 if there are none)."""
        return sum(
            sample.value
            for sample in self.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    def names(self) -> set[str]:
        return {sample.name for sample in self.samples}

    def label_values(self) -> set[str]:
        return {value for sample in self.samples for value in sample.labels.values()}


@pytest.mark.e2e
async def test_one_booking_moves_the_counters_and_no_label_names_it(stack: Stack) -> None:
    api = stack.api()
    booking_worker = stack.booking_worker()
    notification_worker = stack.notification_worker()
    await stack.wait_until_ready()
    [booking_id] = await stack.book(name=PATIENT)
    async with httpx.AsyncClient(base_url=stack.base_url) as client:
        assert (await client.get(f"/booking/{booking_id}")).status_code == 200
        assert (await client.get("/no/such/path/" + booking_id)).status_code == 404
    [booking] = await wait_until_terminal([booking_id])
    assert booking.status == "confirmed"
    await stack.wait_for_emails([booking_id])
    await stack.wait_until_settled()  # every ack is in: nothing is still being counted

    front = Scrape(f"{stack.base_url}/metrics")
    decider = Scrape(f"http://127.0.0.1:{booking_worker.http_port}/metrics")
    mailer = Scrape(f"http://127.0.0.1:{notification_worker.http_port}/metrics")

    # The API: the request by its route template, the booking received, its request published.
    post = {"route": "/book", "method": "POST", "status": "202"}
    assert front.value("clinic_http_requests_total", **post) == 1
    assert front.value("clinic_http_request_duration_seconds_count", route="/book") == 1
    lookup = {"route": "/booking/{booking_id}", "method": "GET", "status": "200"}
    assert front.value("clinic_http_requests_total", **lookup) == 1
    assert front.value("clinic_http_requests_total", route="unmatched", status="404") == 1
    assert front.value("clinic_bookings_total", outcome="received") == 1
    published = {"destination": "booking_requests", "status": "success"}
    assert front.value("clinic_published_messages_total", **published) == 1
    # Read from the database at scrape time: nothing is left to send or decide.
    assert {"clinic_outbox_oldest_unsent_seconds", "clinic_pending_bookings"} <= front.names()
    assert front.value("clinic_outbox_oldest_unsent_seconds") == 0
    assert not math.isnan(front.value("clinic_pending_bookings"))

    # The booking worker: the request consumed and acked on its queue, the booking
    # confirmed once, the change announced on the fanout exchange.
    queue = {"handler": "booking_requests"}
    assert decider.value("clinic_received_messages_total", **queue) == 1
    assert decider.value("clinic_received_processed_messages_total", status="acked", **queue) == 1
    assert decider.value("clinic_received_processed_messages_duration_seconds_count", **queue) == 1
    assert decider.value("clinic_bookings_total", outcome="confirmed") == 1
    announced = {"destination": "booking_notifications", "status": "success"}
    assert decider.value("clinic_published_messages_total", **announced) == 1
    assert decider.value("clinic_messages_parked_total") == 0

    # The notification worker: the event consumed and acked, one email sent.
    queue = {"handler": "email_notifications"}
    assert mailer.value("clinic_received_messages_total", **queue) == 1
    assert mailer.value("clinic_received_processed_messages_total", status="acked", **queue) == 1
    assert mailer.value("clinic_emails_total", result="sent") == 1
    assert mailer.value("clinic_emails_total", result="failed") == 0

    for scrape in (front, decider, mailer):
        for value in scrape.label_values():
            lowered = value.lower()
            assert booking_id not in value, value
            assert "juan" not in lowered, value
            assert EMAIL not in lowered, value
    assert all(service.running for service in (api, booking_worker, notification_worker))


def counted(name: str, **labels: str) -> float:
    """This process's current value of a metric sample (0 before its first count)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def booking_body(minutes: int) -> dict[str, str]:
    when = utcnow().replace(second=0, microsecond=0) + timedelta(days=20, minutes=minutes)
    return {"patientName": PATIENT, "patientEmail": EMAIL, "date": when.isoformat()}


async def test_metrics_reads_the_oldest_unsent_message_and_the_pending_backlog(
    client: AsyncClient,
) -> None:
    assert (await client.post("/book", json=booking_body(1))).status_code == 202
    # A cancellation whose announcement has been waiting for an hour, leased again and again.
    await outbox.add(
        OutboxRecord(
            id=outbox.record_id(MessageKind.STATUS, "b-1", BookingStatus.CANCELLED),
            kind=MessageKind.STATUS,
            booking_id="b-1",
            status=BookingStatus.CANCELLED,
            due_at=utcnow() + timedelta(seconds=5),
            recorded_at=utcnow() - timedelta(hours=1),
        )
    )
    scrape = await client.get("/metrics")
    assert scrape.status_code == 200
    assert 3600 <= counted("clinic_outbox_oldest_unsent_seconds") < 3700
    assert counted("clinic_pending_bookings") == 1

    await OutboxRecord.get_pymongo_collection().delete_many({"kind": MessageKind.STATUS})
    await client.get("/metrics")
    # The booking's own request is still due: a worker has not decided it.
    assert 0 < counted("clinic_outbox_oldest_unsent_seconds") < 60
    await Booking.get_pymongo_collection().update_many({}, {"$set": {"request_due_at": None}})
    await client.get("/metrics")
    assert counted("clinic_outbox_oldest_unsent_seconds") == 0

    # For Prometheus, not for the clinic's clients.
    assert "/metrics" not in (await client.get("/openapi.json")).json()["paths"]


async def test_a_cancellation_is_counted_once_however_often_it_is_asked_for(
    client: AsyncClient,
) -> None:
    booked = (await client.post("/book", json=booking_body(2))).json()
    before = counted("clinic_bookings_total", outcome="cancelled")
    opened = {"Authorization": f"Bearer {booked['manageToken']}"}
    for _ in range(2):
        answer = await client.post(f"/booking/{booked['id']}/cancel", headers=opened)
        assert answer.status_code == 200
    assert counted("clinic_bookings_total", outcome="cancelled") == before + 1


async def test_retried_and_parked_messages_are_counted_by_queue_and_kind_of_reason(
    both_handlers: FastStream,
) -> None:
    class ClinicDown:
        async def review(self, booking: Booking) -> None:
            raise ConnectionError("clinic system unreachable")

    broker = broker_of(both_handlers)
    queue = BOOKING_REQUESTS.name
    before = {
        kind: counted("clinic_messages_parked_total", queue=queue, reason=kind)
        for kind in ("invalid", "hopeless", "out_of_retries")
    }
    retried = counted("clinic_messages_retried_total", queue=queue)
    rejected = counted("clinic_bookings_total", outcome="rejected")
    booking = Booking(patient_name=PATIENT, patient_email=EMAIL, date=utcnow() + timedelta(days=3))
    await booking.insert()
    last_attempt: dict[str, Any] = {"x-death": [{"queue": queue, "reason": "rejected", "count": 3}]}
    async with TestRabbitBroker(broker):
        await broker.publish(b"not json", BOOKING_REQUESTS)
        await broker.publish(BookAppointment(booking_id="no-such-booking"), BOOKING_REQUESTS)
        with broker.provider.scope(clinic_confirmation, ClinicDown):
            await broker.publish(BookAppointment(booking_id=booking.id), BOOKING_REQUESTS)
            await broker.publish(
                BookAppointment(booking_id=booking.id), BOOKING_REQUESTS, headers=last_attempt
            )
    after = {
        kind: counted("clinic_messages_parked_total", queue=queue, reason=kind) - before[kind]
        for kind in before
    }
    assert after == {"invalid": 1, "hopeless": 1, "out_of_retries": 1}
    assert counted("clinic_messages_retried_total", queue=queue) == retried + 1
    # Given up on after its retries: rejected, and counted so.
    assert counted("clinic_bookings_total", outcome="rejected") == rejected + 1
