"""Cancelling and idempotent booking, through the API with in-memory workers."""

import asyncio
from datetime import timedelta

import pytest
from httpx import AsyncClient

from clinic.handlers import app as workers_app  # noqa: F401  (registers both handlers)
from clinic.idempotency import claim_key
from clinic.messages import BookingStatus
from clinic.models import Booking, IdempotencyKey, SlotClaim, utcnow
from clinic.outbox import relay_once
from clinic.schemas import BookingRequest
from clinic.settings import settings
from clinic.topology import booking_request_publisher, status_publisher
from tests.conftest import Outbox

pytestmark = pytest.mark.usefixtures("clean_db")


def body(minutes: int = 0, name: str = "Juan Pérez") -> dict[str, str]:
    when = (utcnow() + timedelta(days=10, minutes=minutes)).replace(second=0, microsecond=0)
    return {
        "patientName": name,
        "patientEmail": "juan@example.com",
        "date": when.isoformat(),
        "doctorId": "dr-test",
    }


async def test_cancelling_a_confirmed_booking_frees_its_slot_and_tells_the_patient(
    client: AsyncClient, outbox: Outbox
) -> None:
    booked = (await client.post("/book", json=body())).json()
    assert (await client.get(f"/booking/{booked['id']}")).json()["status"] == "confirmed"

    cancelled = await client.post(f"/booking/{booked['id']}/cancel")
    rebooked = (await client.post("/book", json=body(name="José Ñúñez"))).json()

    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert [e.subject.split(" (")[0] for e in outbox.sent] == [
        "Your appointment is confirmed",
        "Your appointment is cancelled",
        "Your appointment is confirmed",
    ]
    assert (await client.get(f"/booking/{rebooked['id']}")).json()["status"] == "confirmed"
    [claim] = await SlotClaim.find_all().to_list()
    assert claim.booking_id == rebooked["id"]


async def test_a_cancelled_pending_booking_is_skipped_by_the_worker(
    client: AsyncClient, outbox: Outbox
) -> None:
    booking = Booking(
        patient_name="Ana Ruiz",
        patient_email="ana@example.com",
        date=utcnow() + timedelta(days=3),
        doctor_id="dr-test",
    )
    await booking.insert()
    await client.delete(f"/booking/{booking.id}")  # before any worker saw it

    await booking_request_publisher.publish({"bookingId": booking.id})

    current = await Booking.get(booking.id)
    assert current is not None
    assert current.status is BookingStatus.CANCELLED
    assert await SlotClaim.find_all().count() == 0
    assert [e.subject.split(" (")[0] for e in outbox.sent] == ["Your appointment is cancelled"]


async def test_cancelling_twice_is_harmless_and_a_rejected_booking_cannot_be(
    client: AsyncClient, outbox: Outbox
) -> None:
    kept = (await client.post("/book", json=body())).json()
    rejected = (await client.post("/book", json=body(name="José Ñúñez"))).json()

    first = await client.post(f"/booking/{kept['id']}/cancel")
    second = await client.delete(f"/booking/{kept['id']}")
    refused = await client.post(f"/booking/{rejected['id']}/cancel")
    unknown = await client.post("/booking/no-such-booking/cancel")

    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert refused.status_code == 409
    assert refused.json() == {"detail": "A rejected booking cannot be cancelled."}
    assert (await client.get(f"/booking/{rejected['id']}")).json()["status"] == "rejected"
    assert unknown.status_code == 404
    assert sum("cancelled" in e.subject for e in outbox.sent) == 1


async def test_the_relay_announces_a_cancellation_whose_publish_was_lost() -> None:
    booking = Booking(
        patient_name="Ana Ruiz",
        patient_email="ana@example.com",
        date=utcnow() + timedelta(days=3),
        status=BookingStatus.CANCELLED,
        request_published=True,
        announce_after=utcnow() - timedelta(seconds=1),
    )
    await booking.insert()
    from faststream.rabbit import TestRabbitBroker

    from clinic.topology import broker

    async with TestRabbitBroker(broker):
        assert await relay_once() == 1
        assert await relay_once() == 0
        status_publisher.mock.assert_called_once()

    current = await Booking.get(booking.id)
    assert current is not None
    assert current.notified_status is BookingStatus.CANCELLED
    assert current.announce_after is None


async def test_the_same_idempotency_key_and_body_books_once(client: AsyncClient) -> None:
    key = {"Idempotency-Key": "7f1c3e9a-double-click"}
    first = await client.post("/book", json=body(), headers=key)
    # The same request again, sent differently: other key order and spacing in the name.
    again = await client.post(
        "/book", json=dict(reversed(body(name="  Juan Pérez ").items())), headers=key
    )

    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Location"] == f"/booking/{first.json()['id']}"
    assert await Booking.find_all().count() == 1
    booking_request_publisher.mock.assert_called_once()


async def test_an_idempotency_key_with_another_body_is_refused(client: AsyncClient) -> None:
    key = {"Idempotency-Key": "key-1"}
    await client.post("/book", json=body(), headers=key)
    other = await client.post("/book", json=body(minutes=30), headers=key)
    bad_key = await client.post("/book", json=body(), headers={"Idempotency-Key": "no spaces"})

    assert other.status_code == 409
    assert "another request" in other.json()["detail"]
    assert bad_key.status_code == 422
    assert await Booking.find_all().count() == 1


async def test_idempotency_keys_expire(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "idempotency_ttl", 0.5)
    key = {"Idempotency-Key": "key-2"}
    first = await client.post("/book", json=body(), headers=key)
    await asyncio.sleep(0.6)
    later = await client.post("/book", json=body(minutes=30), headers=key)

    assert later.status_code == 202
    assert later.json()["id"] != first.json()["id"]
    stored = await IdempotencyKey.get("key-2")
    assert stored is not None
    assert stored.booking_id == later.json()["id"]


async def test_a_retry_after_a_lost_first_attempt_books_once_under_the_same_id(
    client: AsyncClient,
) -> None:
    # The first attempt claimed the key, then its answer was lost (a 503, a timeout).
    request = BookingRequest.model_validate(body())
    assert await claim_key("key-3", request, "first-attempt-id") is None

    retried = await client.post("/book", json=body(), headers={"Idempotency-Key": "key-3"})
    again = await client.post("/book", json=body(), headers={"Idempotency-Key": "key-3"})

    assert retried.status_code == 202
    assert retried.json()["id"] == "first-attempt-id"
    assert again.status_code == 200
    assert again.json()["id"] == "first-attempt-id"
    assert await Booking.find_all().count() == 1
