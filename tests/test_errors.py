"""What clients see when their request is wrong, or when something fails inside the API."""

import logging
from datetime import timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from pymongo.errors import BulkWriteError, DuplicateKeyError, ServerSelectionTimeoutError

from clinic.clock import utcnow
from clinic.logs import MaskedFormatter
from clinic.store import bookings
from clinic.store.documents import Booking
from tests.conftest import STAFF

pytestmark = pytest.mark.usefixtures("clean_db")

FUTURE = (utcnow() + timedelta(days=30)).strftime("%Y-%m-%dT10:30:00Z")
VALID = {"patientName": "Juan Pérez", "patientEmail": "juan@example.com", "date": FUTURE}


@pytest.mark.parametrize(
    "url",
    [
        "/doctors/dr-test/availability?date=9999-12-31",
        "/doctors/dr-test/availability?date=0001-01-01",
        "/doctors/dr-test/availability?date=0",
        "/doctors/dr-test/availability?date=20300617",
        "/bookings?from=0001-01-01T00:00:00Z",
        "/bookings?to=9999-12-31T23:59:59Z",
        "/bookings?from=9999-12-31T23:59:59-23:59",
        "/bookings?from=0",
        "/bookings?to=1700000000",
    ],
)
async def test_dates_outside_what_the_api_documents_are_422(client: AsyncClient, url: str) -> None:
    response = await client.get(url, headers=STAFF)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][0] == "query"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"active": 0}, "active"),
        ({"active": "false"}, "active"),
        ({"slotMinutes": "30"}, "slotMinutes"),
        ({"slotMinutes": 30.0}, "slotMinutes"),
    ],
)
async def test_doctor_changes_take_only_the_documented_types(
    client: AsyncClient, changes: dict[str, Any], field: str
) -> None:
    response = await client.patch("/doctors/dr-test", json=changes, headers=STAFF)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", field]
    unchanged = (await client.get("/doctors/dr-test")).json()
    assert unchanged["active"] is True
    assert unchanged["slotMinutes"] == 1


@pytest.mark.parametrize("body", [b"\xff\xfe{", b'{"patientName": "Juan', b""])
async def test_a_body_that_cannot_be_decoded_is_a_documented_422(
    client: AsyncClient, body: bytes
) -> None:
    response = await client.post(
        "/book", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][0] == "body"
    assert await Booking.find_all().count() == 0


async def test_validation_errors_do_not_quote_what_was_sent(client: AsyncClient) -> None:
    response = await client.post("/book", json=VALID | {"patientEmail": "juan.perez@"})
    assert response.status_code == 422
    assert "juan.perez" not in response.text
    assert response.json()["detail"][0]["loc"] == ["body", "patientEmail"]


def _failing(exc: Exception) -> Any:
    async def insert(booking: Booking) -> bool:
        raise exc

    return insert


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("juan@example.com Juan Pérez"),
        DuplicateKeyError("E11000 duplicate key {'patient_email': 'juan@example.com'}", 11000),
        BulkWriteError({"writeErrors": [{"code": 11000, "op": {"patient_name": "Juan Pérez"}}]}),
    ],
    ids=["a bug", "a duplicate key", "a bulk write"],
)
async def test_an_unexpected_error_is_a_500_with_an_id_logged_once_without_patient_data(
    client: AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    exc: Exception,
) -> None:
    monkeypatch.setattr(bookings, "insert", _failing(exc))
    with caplog.at_level(logging.ERROR, logger="clinic"):
        response = await client.post("/book", json=VALID)

    assert response.status_code == 500
    error_id = response.json()["errorId"]
    assert error_id in response.json()["detail"]
    assert "Juan" not in response.text
    logged = [r for r in caplog.records if error_id in r.getMessage()]
    assert len(logged) == 1
    line = MaskedFormatter().format(logged[0])
    assert "Traceback" in line
    assert "POST /book" in line
    for secret in ("juan@example.com", "Juan Pérez", "patient_name"):
        assert secret not in line


async def test_only_a_database_that_does_not_answer_is_a_503(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bookings, "insert", _failing(ServerSelectionTimeoutError("no servers")))
    response = await client.post("/book", json=VALID)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert "try again" in response.json()["detail"]
