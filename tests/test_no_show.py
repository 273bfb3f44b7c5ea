"""Staff mark a missed appointment as a no-show; patients may change theirs only with notice.

Through the API, with both handlers in this process on the in-memory broker.
"""

from datetime import timedelta

import pytest
from faststream import FastStream
from httpx import AsyncClient
from prometheus_client import REGISTRY

from clinic.clock import utcnow
from clinic.store.documents import Booking
from tests.conftest import STAFF, Mailbox, publishers_of

pytestmark = pytest.mark.usefixtures("clean_db")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def book(client: AsyncClient, ahead: timedelta) -> dict[str, str]:
    """A booking ``ahead`` from now, confirmed by the handlers; its answer."""
    when = (utcnow() + ahead).replace(second=0, microsecond=0)
    body = {"patientName": "Ann Lee", "patientEmail": "ann@example.com", "date": when.isoformat()}
    created = await client.post("/book", json=body)
    assert created.status_code == 202, created.text
    booked: dict[str, str] = created.json()
    assert (await client.get(f"/booking/{booked['id']}")).json()["status"] == "confirmed"
    return booked


async def has_begun(booking_id: str) -> None:
    """Move the appointment to a minute ago, as if its time had come."""
    stored = await Booking.get(booking_id)
    assert stored is not None
    await stored.set({"date": utcnow() - timedelta(minutes=1)})


def no_shows() -> float:
    return REGISTRY.get_sample_value("clinic_bookings_total", {"outcome": "no_show"}) or 0.0


async def test_staff_mark_a_missed_appointment_listed_announced_and_counted(
    client_and_handlers: AsyncClient, both_handlers: FastStream, mailbox: Mailbox
) -> None:
    client = client_and_handlers
    booked = await book(client, timedelta(days=2))
    await has_begun(booked["id"])
    counted = no_shows()

    marked = await client.post(f"/booking/{booked['id']}/no-show", headers=STAFF)
    again = await client.post(f"/booking/{booked['id']}/no-show", headers=STAFF)

    assert marked.status_code == again.status_code == 200
    assert marked.json()["status"] == again.json()["status"] == "no_show"
    listed = await client.get("/bookings", params={"status": "no_show"}, headers=STAFF)
    assert [b["id"] for b in listed.json()["bookings"]] == [booked["id"]]
    announced = publishers_of(both_handlers).status_changes.mock
    assert announced is not None
    statuses = [call.args[0]["status"] for call in announced.call_args_list]
    assert statuses == ["confirmed", "no_show"]  # once, however often staff mark it
    assert no_shows() == counted + 1
    assert [e.subject.split(":")[0] for e in mailbox.sent] == ["Su cita está confirmada"]
    cancelled = await client.post(f"/booking/{booked['id']}/cancel", headers=STAFF)
    assert cancelled.status_code == 409
    assert cancelled.json() == {"detail": "A missed appointment cannot be cancelled."}


async def test_only_staff_and_only_once_the_appointments_time_has_come(
    client_and_handlers: AsyncClient,
) -> None:
    client = client_and_handlers
    booked = await book(client, timedelta(days=2))

    early = await client.post(f"/booking/{booked['id']}/no-show", headers=STAFF)
    await has_begun(booked["id"])
    anonymous = await client.post(f"/booking/{booked['id']}/no-show")
    patient = await client.post(
        f"/booking/{booked['id']}/no-show", headers=bearer(booked["manageToken"])
    )
    unknown = await client.post("/booking/no-such-booking/no-show", headers=STAFF)

    assert early.status_code == 409
    assert "whose time has come" in early.json()["detail"]
    assert (anonymous.status_code, patient.status_code, unknown.status_code) == (401, 403, 404)
    assert (await client.get(f"/booking/{booked['id']}")).json()["status"] == "confirmed"


async def test_a_patient_cannot_cancel_within_the_minimum_notice_but_staff_can(
    client_and_handlers: AsyncClient, mailbox: Mailbox
) -> None:
    client = client_and_handlers
    soon = await book(client, timedelta(hours=20))  # CLINIC_MIN_NOTICE is 24 h
    later = await book(client, timedelta(hours=30))

    refused = await client.post(
        f"/booking/{soon['id']}/cancel", headers=bearer(soon["manageToken"])
    )
    allowed = await client.post(
        f"/booking/{later['id']}/cancel", headers=bearer(later["manageToken"])
    )
    by_staff = await client.post(f"/booking/{soon['id']}/cancel", headers=STAFF)

    assert refused.status_code == 409
    assert refused.json() == {
        "detail": "Less than 24 hours before the appointment it can only be changed by the "
        "clinic: please call us."
    }
    assert allowed.json()["status"] == by_staff.json()["status"] == "cancelled"
