"""The HTTP API in process (httpx on the ASGI app), publishing to an in-memory broker."""

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from unittest.mock import MagicMock

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from pymongo import AsyncMongoClient

from clinic.clock import utcnow
from clinic.domain.hand_overs import handed_over
from clinic.store.documents import Booking, OutboxRecord

pytestmark = pytest.mark.usefixtures("clean_db")

FUTURE = (utcnow() + timedelta(days=30)).strftime("%Y-%m-%dT10:30:00Z")
VALID = {"patientName": "Juan Pérez", "patientEmail": "juan@example.com", "date": FUTURE}


async def test_book_answers_202_with_the_stored_pending_booking(
    api: FastAPI, client: AsyncClient, requests_published: MagicMock
) -> None:
    response = await client.post("/book", json=VALID)

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "pending"
    assert body["patientName"] == "Juan Pérez"
    assert body["patientEmail"] == "juan@example.com"
    assert body["date"] == FUTURE
    assert {"id", "createdAt", "updatedAt"} <= body.keys()
    assert uuid.UUID(body["id"]).version == 4
    assert response.headers["Location"] == f"/booking/{body['id']}"
    requests_published.assert_called_once_with({"bookingId": body["id"]})
    # The broker confirmed it, so once the process records its mark, the outbox relay
    # will not publish it again.
    stored = await Booking.get(body["id"])
    assert stored is not None
    assert not await handed_over(stored.hand_over)
    await api.state.hand_overs.record_mark()
    assert await handed_over(stored.hand_over)


async def test_dates_are_stored_in_utc(client: AsyncClient) -> None:
    response = await client.post("/book", json=VALID | {"date": "2031-03-30T12:15:00+02:00"})
    assert response.status_code == 202
    assert response.json()["date"] == "2031-03-30T10:15:00Z"


BAD_BODIES: list[tuple[str, Any, str]] = [
    ("missing name", {k: v for k, v in VALID.items() if k != "patientName"}, "patientName"),
    ("missing email", {k: v for k, v in VALID.items() if k != "patientEmail"}, "patientEmail"),
    ("missing date", {k: v for k, v in VALID.items() if k != "date"}, "date"),
    ("blank name", VALID | {"patientName": "   "}, "patientName"),
    ("invalid email", VALID | {"patientEmail": "juan@"}, "patientEmail"),
    ("unparseable date", VALID | {"date": "next tuesday"}, "date"),
    ("date without timezone", VALID | {"date": "2031-06-15T10:30:00"}, "date"),
    ("date in year 1", VALID | {"date": "0001-01-01T00:00:00+01:00"}, "date"),
    ("operator as name", VALID | {"patientName": {"$gt": ""}}, "patientName"),
    ("operator as email", VALID | {"patientEmail": {"$ne": None}}, "patientEmail"),
    ("number as name", VALID | {"patientName": 42}, "patientName"),
    ("control characters", VALID | {"patientName": "Juan\x00Pérez"}, "patientName"),
    ("unknown operator field", VALID | {"$where": "sleep(1000)"}, "$where"),
    ("name of 10,000 characters", VALID | {"patientName": "J" * 10_000}, "patientName"),
    ("date in year 9999", VALID | {"date": "9999-12-31T23:59:00Z"}, "date"),
    ("number as date", VALID | {"date": 1_900_000_000}, "date"),
    ("operator string as name", VALID | {"patientName": "$where"}, "patientName"),
    ("operator string as email", VALID | {"patientEmail": "$where@example.com"}, "patientEmail"),
    ("operator as doctor", VALID | {"doctorId": {"$ne": None}}, "doctorId"),
    ("operator string as doctor", VALID | {"doctorId": "$where"}, "doctorId"),
    ("list as body", [VALID], "body"),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD_BODIES, ids=[c for c, _, _ in BAD_BODIES])
async def test_bad_or_hostile_input_is_422_per_field_and_leaves_nothing(
    client: AsyncClient, requests_published: MagicMock, case: str, body: Any, field: str
) -> None:
    response = await client.post("/book", json=body)

    assert response.status_code == 422, case
    errors = response.json()["detail"]
    assert any(err["loc"][-1] == field and err["msg"] for err in errors), errors
    assert await Booking.find_all().count() == 0
    assert await OutboxRecord.find_all().count() == 0
    requests_published.assert_not_called()


async def test_body_that_is_not_json_is_422(
    client: AsyncClient, requests_published: MagicMock
) -> None:
    response = await client.post(
        "/book", content=b"patientName=Juan", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"
    assert await Booking.find_all().count() == 0
    assert await OutboxRecord.find_all().count() == 0
    requests_published.assert_not_called()


async def test_get_booking_shows_status_and_timestamps(client: AsyncClient) -> None:
    created = (await client.post("/book", json=VALID)).json()

    opened = {"Authorization": f"Bearer {created['manageToken']}"}
    response = await client.get(f"/booking/{created['id']}", headers=opened)

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == created["id"]
    assert body["status"] == "pending"  # no handler runs beside this API
    assert body["patientEmail"] == "juan@example.com"
    assert {"createdAt", "updatedAt", "date", "patientName"} <= body.keys()
    assert "manageToken" not in body


@pytest.mark.parametrize(
    "booking_id",
    ["5f0c8a4e-2d3b-4c1a-9e7f-0b6d2a1c3e4f", "not-a-uuid", "x" * 500, "%24where", "{'$gt':''}"],
)
async def test_unknown_or_malformed_id_is_404(client: AsyncClient, booking_id: str) -> None:
    response = await client.get(f"/booking/{booking_id}")
    assert response.status_code == 404
    assert response.json() == {"detail": "No booking with this id."}


async def test_health_answers(client: AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_is_503_when_the_database_does_not_answer(
    api: FastAPI, client: AsyncClient
) -> None:
    dead: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        "mongodb://127.0.0.1:1/?retryWrites=false", serverSelectionTimeoutMS=200
    )
    api.state.mongo = dead
    try:
        response = await client.get("/ready")
    finally:
        await dead.close()
    assert response.status_code == 503
    assert response.json()["database"] == "down"


@pytest.mark.parametrize("name", ["Juan Pérez", "José Ñúñez", "Zoë O'Brien-Łukasz", "王小明"])
async def test_unicode_names_are_booked_as_written(client: AsyncClient, name: str) -> None:
    response = await client.post("/book", json=VALID | {"patientName": name})
    assert response.status_code == 202
    stored = await Booking.get(response.json()["id"])
    assert stored is not None
    assert stored.patient_name == name


async def test_oversized_bodies_are_413_and_leave_nothing(client: AsyncClient) -> None:
    padded = VALID | {"patientName": "Juan Pérez", "padding": "x" * 20_000}
    declared = await client.post("/book", json=padded)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(40):
            yield b" " * 1024

    streamed = await client.post(
        "/book", content=chunks(), headers={"Content-Type": "application/json"}
    )
    just_fits = await client.post("/book", json=VALID | {"patientName": "J" * 150})

    assert declared.status_code == 413
    assert declared.json() == {"detail": "The request body is larger than 16 KiB."}
    assert streamed.status_code == 413
    assert just_fits.status_code == 202
    assert await Booking.find_all().count() == 1
