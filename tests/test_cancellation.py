"""Cancelling and idempotent booking, through the API (with both handlers where they say so)."""

import asyncio
from datetime import timedelta
from unittest.mock import MagicMock

import pytest
from faststream import FastStream
from faststream.rabbit import TestRabbitBroker
from httpx import AsyncClient

from clinic.api.routes.intake import fingerprint
from clinic.api.schemas import BookingRequest
from clinic.clock import utcnow
from clinic.domain.cancellation import cancel
from clinic.domain.confirmation import clinic_confirmation
from clinic.domain.outbox import relay_once
from clinic.handlers import worker_app
from clinic.messages import BookingStatus
from clinic.settings import settings
from clinic.store import outbox
from clinic.store.documents import Booking, IdempotencyKey, MessageKind, OutboxRecord, SlotClaim
from clinic.store.idempotency import claim_key
from tests.conftest import STAFF, Mailbox, broker_of, publishers_of

pytestmark = pytest.mark.usefixtures("clean_db")


THIS_MINUTE = utcnow().replace(second=0, microsecond=0)
"""Read once, so that two bookings meant for one time cannot straddle a minute."""


def key(booked: dict[str, str]) -> dict[str, str]:
    """The headers that open a booking: its manage token."""
    return {"Authorization": f"Bearer {booked['manageToken']}"}


def body(minutes: int = 0, name: str = "Juan Pérez") -> dict[str, str]:
    when = THIS_MINUTE + timedelta(days=10, minutes=minutes)
    return {
        "patientName": name,
        "patientEmail": "juan@example.com",
        "date": when.isoformat(),
        "doctorId": "dr-test",
    }


async def test_cancelling_a_confirmed_booking_frees_its_slot_and_tells_the_patient(
    client_and_handlers: AsyncClient, mailbox: Mailbox
) -> None:
    client = client_and_handlers
    booked = (await client.post("/book", json=body())).json()
    assert (await client.get(f"/booking/{booked['id']}")).json()["status"] == "confirmed"

    cancelled = await client.post(f"/booking/{booked['id']}/cancel", headers=key(booked))
    rebooked = (await client.post("/book", json=body(name="José Ñúñez"))).json()

    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    # In Spanish, the bookings' default language.
    assert [e.subject.split(":")[0] for e in mailbox.sent] == [
        "Su cita está confirmada",
        "Su cita está cancelada",
        "Su cita está confirmada",
    ]
    assert (await client.get(f"/booking/{rebooked['id']}")).json()["status"] == "confirmed"
    [claim] = await SlotClaim.find_all().to_list()
    assert claim.booking_id == rebooked["id"]


async def test_a_cancelled_pending_booking_is_skipped_by_the_worker(
    client_and_handlers: AsyncClient, both_handlers: FastStream, mailbox: Mailbox
) -> None:
    reviewed: list[str] = []

    class RecordingClinic:
        async def review(self, booking: Booking) -> None:
            reviewed.append(booking.id)

    # On a slot of the doctor's, so a worker that did not skip it would claim it.
    when = THIS_MINUTE + timedelta(days=3)
    booking = Booking(
        patient_name="Ana Ruiz", patient_email="ana@example.com", date=when, doctor_id="dr-test"
    )
    await booking.insert()
    # Staff cancel it, before any worker has seen it.
    cancelled = await client_and_handlers.delete(f"/booking/{booking.id}", headers=STAFF)
    publishers = publishers_of(both_handlers)

    assert both_handlers.broker is not None
    with both_handlers.broker.provider.scope(clinic_confirmation, RecordingClinic):
        await publishers.request_decision(booking.id)

    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert reviewed == [], "the worker asked the clinic about a cancelled booking"
    current = await Booking.get(booking.id)
    assert current is not None
    assert current.status is BookingStatus.CANCELLED
    assert await SlotClaim.find_all().count() == 0
    announced = publishers.status_changes.mock
    assert announced is not None
    assert [c.args[0]["status"] for c in announced.call_args_list] == ["cancelled"]
    assert [e.subject.split(":")[0] for e in mailbox.sent] == ["Su cita está cancelada"]


async def test_cancelling_twice_is_harmless_and_a_rejected_booking_cannot_be(
    client_and_handlers: AsyncClient, both_handlers: FastStream, mailbox: Mailbox
) -> None:
    client = client_and_handlers
    kept = (await client.post("/book", json=body())).json()
    rejected = (await client.post("/book", json=body(name="José Ñúñez"))).json()

    first = await client.post(f"/booking/{kept['id']}/cancel", headers=key(kept))
    second = await client.delete(f"/booking/{kept['id']}", headers=key(kept))
    refused = await client.post(f"/booking/{rejected['id']}/cancel", headers=key(rejected))
    unknown = await client.post("/booking/no-such-booking/cancel", headers=key(kept))

    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert refused.status_code == 409
    assert refused.json() == {"detail": "A rejected booking cannot be cancelled."}
    assert (await client.get(f"/booking/{rejected['id']}")).json()["status"] == "rejected"
    assert unknown.status_code == 404
    assert sum(e.subject.startswith("Su cita está cancelada") for e in mailbox.sent) == 1
    announced = publishers_of(both_handlers).status_changes.mock
    assert announced is not None
    statuses = [c.args[0]["status"] for c in announced.call_args_list]
    assert statuses.count("cancelled") == 1, "the second cancel announced it again"


async def test_the_relay_announces_a_cancellation_whose_publish_was_lost() -> None:
    booking = Booking(
        patient_name="Ana Ruiz", patient_email="ana@example.com", date=utcnow() + timedelta(days=3)
    )
    await booking.insert()
    await cancel(booking.id)  # and the process died before it announced the cancellation
    record_id = outbox.record_id(MessageKind.STATUS, booking.id, BookingStatus.CANCELLED)
    await OutboxRecord.get_pymongo_collection().update_one(
        {"_id": record_id}, {"$set": {"due_at": utcnow() - timedelta(seconds=1)}}
    )
    relay = worker_app("relay under test")
    publishers = publishers_of(relay)

    async with TestRabbitBroker(broker_of(relay)):
        assert await relay_once(publishers) == 1
        assert await relay_once(publishers) == 0
        announced = publishers.status_changes.mock
        assert announced is not None
        [call] = announced.call_args_list
        assert call.args[0]["status"] == "cancelled"

    record = await outbox.get(record_id)
    assert record is not None
    assert record.sent_at is not None


async def test_the_same_idempotency_key_and_body_books_once(
    client: AsyncClient, requests_published: MagicMock
) -> None:
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
    requests_published.assert_called_once()


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
    assert await claim_key("key-3", fingerprint(request), "first-attempt-id") is None

    retried = await client.post("/book", json=body(), headers={"Idempotency-Key": "key-3"})
    again = await client.post("/book", json=body(), headers={"Idempotency-Key": "key-3"})

    assert retried.status_code == 202
    assert retried.json()["id"] == "first-attempt-id"
    assert again.status_code == 200
    assert again.json()["id"] == "first-attempt-id"
    assert await Booking.find_all().count() == 1
