"""Doctors over HTTP: patients list them and their free slots, staff manage them."""

from datetime import UTC
from pathlib import Path
from unittest.mock import MagicMock

import pytest
from httpx import AsyncClient
from pymongo import AsyncMongoClient

from clinic.api.seed import read_seed, seed_doctors
from clinic.store.documents import Booking, Doctor, OutboxRecord, SlotClaim
from tests.conftest import STAFF
from tests.integration import next_monday
from tests.test_database_cost import assert_served_by_indexes, profiled

pytestmark = pytest.mark.usefixtures("clean_db")

ROOT = Path(__file__).resolve().parent.parent
NEW_DOCTOR = {
    "id": "dra-garcia",
    "name": "Dra. Lucía García",
    "specialty": "Medicina general",
    "workingHours": {"mon": [["09:00", "11:00"]]},
    "slotMinutes": 30,
}


async def test_the_example_seed_file_is_valid_and_seeding_keeps_staff_changes() -> None:
    example = read_seed(ROOT / "doctors.example.json")
    assert len(example) >= 2
    assert await seed_doctors(ROOT / "doctors.example.json") == len(example)
    garcia = await Doctor.get("dra-garcia")
    assert garcia is not None
    await garcia.set({"specialty": "Cardiología"})

    assert await seed_doctors(ROOT / "doctors.example.json") == 0
    assert (await Doctor.get("dra-garcia")).specialty == "Cardiología"  # type: ignore[union-attr]


async def test_staff_add_change_and_deactivate_doctors(client: AsyncClient) -> None:
    added = await client.post("/doctors", json=NEW_DOCTOR, headers=STAFF)
    again = await client.post("/doctors", json=NEW_DOCTOR, headers=STAFF)
    changed = await client.patch("/doctors/dra-garcia", json={"slotMinutes": 20}, headers=STAFF)
    listed = await client.get("/doctors")
    removed = await client.delete("/doctors/dra-garcia", headers=STAFF)
    after = await client.get("/doctors")
    everyone = await client.get("/doctors", params={"includeInactive": "true"})

    assert added.status_code == 201
    assert added.json() == NEW_DOCTOR | {"active": True}
    assert again.status_code == 409
    assert changed.json()["slotMinutes"] == 20
    assert "dra-garcia" in [d["id"] for d in listed.json()["doctors"]]
    assert removed.json()["active"] is False
    assert "dra-garcia" not in [d["id"] for d in after.json()["doctors"]]
    assert "dra-garcia" in [d["id"] for d in everyone.json()["doctors"]]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer not-a-staff-token"}, 403),
        ({"Authorization": "Basic x"}, 401),
    ],
)
async def test_doctor_management_is_for_staff_only(
    client: AsyncClient, headers: dict[str, str], status: int
) -> None:
    attempts = [
        await client.post("/doctors", json=NEW_DOCTOR, headers=headers),
        await client.patch("/doctors/dr-test", json={"name": "X"}, headers=headers),
        await client.delete("/doctors/dr-test", headers=headers),
    ]
    assert [a.status_code for a in attempts] == [status] * 3
    assert all(a.json()["detail"] for a in attempts)
    assert await Doctor.get("dra-garcia") is None
    assert (await Doctor.get("dr-test")).active  # type: ignore[union-attr]


async def test_bad_doctors_are_refused_with_a_reason(client: AsyncClient) -> None:
    bad = [
        NEW_DOCTOR | {"id": "Dra García"},
        NEW_DOCTOR | {"workingHours": {"mon": [["11:00", "09:00"]]}},
        NEW_DOCTOR | {"workingHours": {"someday": [["09:00", "11:00"]]}},
        NEW_DOCTOR | {"workingHours": {"mon": [["9am", "11:00"]]}},
        NEW_DOCTOR | {"slotMinutes": 0},
        NEW_DOCTOR | {"salary": 1},
    ]
    answers = [await client.post("/doctors", json=body, headers=STAFF) for body in bad]
    assert [a.status_code for a in answers] == [422] * len(bad)
    assert await Doctor.find_all().count() == 1  # only the seeded test doctor


async def test_availability_leaves_out_pending_and_confirmed_slots(client: AsyncClient) -> None:
    await client.post("/doctors", json=NEW_DOCTOR, headers=STAFF)
    monday = next_monday()
    nine, half_past = monday.replace(hour=9), monday.replace(hour=9, minute=30)
    pending = await client.post(
        "/book",
        json={
            "patientName": "José Ñúñez",
            "patientEmail": "jose@example.com",
            "date": nine.isoformat(),
            "doctorId": "dra-garcia",
        },
    )
    await SlotClaim(
        id=f"dra-garcia|{half_past.astimezone(UTC).isoformat()}",
        doctor_id="dra-garcia",
        start=half_past,
        booking_id="someone-else",
    ).insert()

    answer = await client.get(
        "/doctors/dra-garcia/availability", params={"date": monday.date().isoformat()}
    )

    assert pending.status_code == 202
    assert pending.json()["status"] == "pending"
    still = await client.get(f"/booking/{pending.json()['id']}")
    assert still.json()["status"] == "pending", "no handler runs beside this API"
    body = answer.json()
    assert body["timezone"] == "Europe/Madrid"
    local_starts = [slot["localStart"][11:16] for slot in body["slots"]]
    assert local_starts == ["10:00", "10:30"]
    assert body["slots"][0]["start"] == monday.replace(hour=10).astimezone(UTC).isoformat().replace(
        "+00:00", "Z"
    )


async def test_a_days_availability_reads_only_that_day(
    client: AsyncClient, clean_db: AsyncMongoClient[dict[str, object]]
) -> None:
    # Anyone may ask, as often as they like: each answer must cost the database the
    # day it shows, not every booking the clinic holds.
    await client.post("/doctors", json=NEW_DOCTOR, headers=STAFF)
    monday = next_monday()

    async with profiled(clean_db) as entries:
        answer = await client.get(
            "/doctors/dra-garcia/availability", params={"date": monday.date().isoformat()}
        )

    assert answer.status_code == 200
    assert {entry["ns"].split(".", 1)[-1] for entry in entries} >= {"bookings", "slot_claims"}
    await assert_served_by_indexes(clean_db, entries)


async def test_unknown_doctors_are_404_and_bad_days_422(client: AsyncClient) -> None:
    assert (await client.get("/doctors/nobody")).status_code == 404
    changed = await client.patch("/doctors/nobody", json={"slotMinutes": 20}, headers=STAFF)
    assert changed.status_code == 404
    assert changed.json() == {"detail": "No doctor with this id."}
    assert (await client.delete("/doctors/nobody", headers=STAFF)).status_code == 404
    assert await Doctor.find_all().count() == 1  # nothing was created by the attempts
    assert (await client.get("/doctors/nobody/availability?date=2030-01-07")).status_code == 404
    assert (await client.get("/doctors/dr-test/availability?date=2030-13-01")).status_code == 422
    assert (await client.get("/doctors/dr-test/availability")).status_code == 422


async def test_booking_an_unknown_or_inactive_doctor_is_refused_and_stores_nothing(
    client: AsyncClient, requests_published: MagicMock
) -> None:
    await client.post("/doctors", json=NEW_DOCTOR | {"active": False}, headers=STAFF)
    body = {
        "patientName": "Juan Pérez",
        "patientEmail": "juan@example.com",
        "date": next_monday().replace(hour=9).isoformat(),
    }
    answers = [
        await client.post("/book", json=body | {"doctorId": doctor})
        for doctor in ("nobody", "dra-garcia", "$where", 7)
    ]
    assert [a.status_code for a in answers] == [422] * 4
    for unknown_or_inactive in answers[:2]:
        [problem] = unknown_or_inactive.json()["detail"]
        assert problem["type"] == "doctor_unavailable"  # the worker's reason code
        assert problem["loc"] == ["body", "doctorId"]
    assert await Booking.find_all().count() == 0
    assert await OutboxRecord.find_all().count() == 0
    requests_published.assert_not_called()


async def test_booked_appointments_stay_booked_after_their_doctor_is_deactivated(
    client_and_handlers: AsyncClient,
) -> None:
    client = client_and_handlers
    await client.post("/doctors", json=NEW_DOCTOR, headers=STAFF)
    nine = next_monday().replace(hour=9)
    body = {"patientName": "Ana Ruiz", "patientEmail": "ana@example.com", "date": nine.isoformat()}
    booked = (await client.post("/book", json=body | {"doctorId": "dra-garcia"})).json()
    assert (await client.get(f"/booking/{booked['id']}")).json()["status"] == "confirmed"

    deactivated = await client.delete("/doctors/dra-garcia", headers=STAFF)

    assert deactivated.status_code == 200
    assert deactivated.json()["active"] is False
    assert (await client.get(f"/booking/{booked['id']}")).json()["status"] == "confirmed"
    [claim] = await SlotClaim.find_all().to_list()
    assert claim.booking_id == booked["id"]
