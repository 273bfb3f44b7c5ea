"""Where the API and its OpenAPI document disagreed, each request now gets the documented answer.

One test per finding of the deep schemathesis run (``test_openapi.py``).
"""

import re
from datetime import timedelta
from typing import Any

import pytest
from httpx import AsyncClient

from clinic.api import app
from clinic.clock import utcnow
from clinic.store.documents import Booking, Doctor
from tests.conftest import STAFF

pytestmark = pytest.mark.usefixtures("clean_db")

FUTURE = (utcnow() + timedelta(days=30)).strftime("%Y-%m-%dT10:30:00Z")
VALID = {"patientName": "Juan Pérez", "patientEmail": "juan@example.com", "date": FUTURE}
DOCUMENT = app.openapi()
BOOK = DOCUMENT["paths"]["/book"]["post"]


def rules_of(operation: dict[str, Any]) -> set[str]:
    """The rule codes an operation's 422 answer names."""
    return set(re.findall(r"`([a-z_]+)`", operation["responses"]["422"]["description"]))


async def test_a_patient_books_and_looks_up_without_a_token_as_the_document_allows(
    client: AsyncClient,
) -> None:
    booked = await client.post("/book", json=VALID)
    looked = await client.get(booked.headers["Location"])

    assert (booked.status_code, looked.status_code) == (202, 200)
    lookup = DOCUMENT["paths"]["/booking/{booking_id}"]["get"]
    assert {} in BOOK["security"]
    assert {} in lookup["security"]


async def test_a_wrong_staff_token_on_book_is_the_documented_403(client: AsyncClient) -> None:
    answer = await client.post("/book", json=VALID, headers={"Authorization": "Bearer wrong"})

    assert answer.status_code == 403
    assert "403" in BOOK["responses"]
    assert await Booking.find_all().count() == 0


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/booking/3f2b8c1e-7d4a-4c55-9a0e-2b6f1d9c8e71", {"GET", "DELETE"}),
        ("/doctors", {"GET", "POST"}),
        ("/doctors/dr-test", {"GET", "PATCH", "DELETE"}),
    ],
)
async def test_a_method_not_allowed_lists_every_method_of_the_path(
    client: AsyncClient, path: str, methods: set[str]
) -> None:
    answer = await client.request("OPTIONS", path)

    assert answer.status_code == 405
    assert set(answer.headers["Allow"].split(", ")) - {"HEAD"} == methods


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/bookings?from=1999-12-31T23:30:00-01:00", 422),  # 2000 in UTC, 1999 as written
        ("/bookings?from=2000-01-01T00:30:00%2B01:00", 200),  # 1999 in UTC, 2000 as written
        ("/bookings?to=2100-12-31T23:30:00-01:00", 200),
    ],
)
async def test_a_date_s_year_is_bounded_as_written_as_the_document_s_pattern_says(
    client: AsyncClient, url: str, status: int
) -> None:
    answer = await client.get(url, headers=STAFF)

    assert answer.status_code == status, answer.text
    parameters = DOCUMENT["paths"]["/bookings"]["get"]["parameters"]
    dates = [p["schema"]["anyOf"][0] for p in parameters if p["name"] in {"from", "to"}]
    assert [d["pattern"] for d in dates] == ["^(20[0-9]{2}|2100)-"] * 2


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"patientName": "   "}, "blank"),
        ({"patientName": "1234"}, "no_letter"),
        ({"patientName": "Juan\u0085Pérez"}, "control_character"),
        ({"patientName": " $where"}, "operator"),
        ({"patientEmail": "juan@example.invalid"}, "email_address"),
        ({"date": "2001-01-01T10:30:00Z"}, "date_in_past"),
    ],
)
async def test_a_valid_booking_that_breaks_a_rule_is_a_422_with_the_documented_code(
    client: AsyncClient, change: dict[str, str], code: str
) -> None:
    answer = await client.post("/book", json=VALID | change)

    assert answer.status_code == 422
    assert [problem["type"] for problem in answer.json()["detail"]] == [code]
    assert code in rules_of(BOOK)


async def test_a_name_s_length_is_counted_as_sent_as_the_document_s_max_length_says(
    client: AsyncClient,
) -> None:
    too_long = " " + "J" * 200
    booked = await client.post("/book", json=VALID | {"patientName": too_long})
    changed = await client.patch("/doctors/dr-test", json={"name": too_long}, headers=STAFF)

    assert booked.status_code == changed.status_code == 422
    assert (await Doctor.get("dr-test")).name == "Dra. Prueba"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"name": "   "}, "blank"),
        ({"workingHours": {"mon": [["11:00", "09:00"]]}}, "shift_order"),
        ({"slotMinutes": 30.0}, "int_type"),
    ],
)
async def test_a_doctor_change_that_breaks_a_rule_is_a_422_with_the_documented_code(
    client: AsyncClient, changes: dict[str, Any], code: str
) -> None:
    answer = await client.patch("/doctors/dr-test", json=changes, headers=STAFF)

    assert answer.status_code == 422
    assert [problem["type"] for problem in answer.json()["detail"]] == [code]
    doctors = DOCUMENT["paths"]["/doctors"]["post"], DOCUMENT["paths"]["/doctors/{doctor_id}"]
    assert all(code in rules_of(operation) for operation in (doctors[0], doctors[1]["patch"]))


async def test_a_deactivated_doctor_stays_readable_as_the_document_says(
    client: AsyncClient,
) -> None:
    deleted = await client.delete("/doctors/dr-test", headers=STAFF)
    read = await client.get("/doctors/dr-test")

    assert (deleted.status_code, read.status_code) == (200, 200)
    assert read.json()["active"] is False
    described = DOCUMENT["paths"]["/doctors/{doctor_id}"]["delete"]["description"]
    assert "stays, readable at its URL" in " ".join(described.split())


def test_a_new_booking_links_to_opening_and_cancelling_it_with_its_manage_token() -> None:
    operation_ids = {
        operation.get("operationId")
        for methods in DOCUMENT["paths"].values()
        for operation in methods.values()
    }
    for status in ("200", "202"):
        links = BOOK["responses"][status]["links"]
        assert {link["operationId"] for link in links.values()} <= operation_ids
        for link in links.values():
            assert link["parameters"]["header.Authorization"] == (
                "Bearer {$response.body#/manageToken}"
            )
