"""Staff's list of bookings: auth, cursor pages, filters, and an index for every filter."""

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient

from clinic.clock import utcnow
from clinic.messages import BookingStatus
from clinic.store.documents import Booking
from clinic.store.listing import BookingFilter, page_cursor
from tests.conftest import STAFF

pytestmark = pytest.mark.usefixtures("clean_db")

START = datetime(2031, 5, 5, 8, 0, tzinfo=UTC)


async def store(n: int, **fields: Any) -> Booking:
    booking = Booking(
        patient_name=f"Paciente {n}",
        patient_email=fields.pop("patient_email", f"p{n}@example.com"),
        date=START + timedelta(hours=n),
        created_at=utcnow() + timedelta(milliseconds=n),
        **fields,
    )
    await booking.insert()
    return booking


async def pages(client: AsyncClient, **params: Any) -> list[list[str]]:
    """Every page's booking ids, following ``next`` to the end."""
    found: list[list[str]] = []
    cursor = None
    while True:
        answer = await client.get(
            "/bookings", params={**params, **({"cursor": cursor} if cursor else {})}, headers=STAFF
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        found.append([b["id"] for b in body["bookings"]])
        cursor = body.get("next")
        if cursor is None:
            return found


async def test_the_list_is_for_staff_only(client: AsyncClient) -> None:
    await store(1)
    nobody = await client.get("/bookings")
    stranger = await client.get("/bookings", headers={"Authorization": "Bearer guess"})
    staff = await client.get(
        "/bookings", headers={"Authorization": "Bearer reception-token-0123456789abcdefghijklmnop"}
    )

    assert nobody.status_code == 401
    assert nobody.headers["WWW-Authenticate"] == "Bearer"
    assert stranger.status_code == 403
    assert "bookings" not in nobody.json()
    assert "bookings" not in stranger.json()
    assert staff.status_code == 200


async def test_pages_follow_the_cursor_newest_first_without_gaps_or_repeats(
    client: AsyncClient,
) -> None:
    stored = [await store(n) for n in range(7)]
    newest_first = [b.id for b in reversed(stored)]

    walked = await pages(client, limit=3)
    first = (await client.get("/bookings", params={"limit": 3}, headers=STAFF)).json()
    await store(99)  # a new booking does not shift the pages already handed out
    second = (
        await client.get("/bookings", params={"limit": 3, "cursor": first["next"]}, headers=STAFF)
    ).json()

    assert [len(p) for p in walked] == [3, 3, 1]
    assert list(itertools.chain(*walked)) == newest_first
    assert first["count"] == 7
    assert [b["id"] for b in second["bookings"]] == newest_first[3:6]
    assert second["count"] == 8


async def test_filters_narrow_the_list_and_the_count(client: AsyncClient) -> None:
    a = await store(1, doctor_id="dr-test", status=BookingStatus.CONFIRMED)
    b = await store(2, doctor_id="dr-test", status=BookingStatus.CANCELLED)
    c = await store(3, status=BookingStatus.CONFIRMED, patient_email="ana@example.com")
    d = await store(4, doctor_id="dr-test", patient_email="ana@example.com")

    async def listed(**params: str) -> tuple[int, list[str]]:
        body = (await client.get("/bookings", params=params, headers=STAFF)).json()
        return body["count"], [x["id"] for x in body["bookings"]]

    assert await listed(status="confirmed") == (2, [c.id, a.id])
    assert await listed(status="cancelled") == (1, [b.id])
    assert await listed(doctorId="dr-test") == (3, [d.id, b.id, a.id])
    assert await listed(patientEmail="ana@example.com") == (2, [d.id, c.id])
    window = {
        "from": (START + timedelta(hours=2)).isoformat(),
        "to": (START + timedelta(hours=4)).isoformat(),
    }
    assert await listed(**window) == (2, [c.id, b.id])
    assert await listed(doctorId="dr-test", status="pending", patientEmail="ana@example.com") == (
        1,
        [d.id],
    )


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"cursor": "not-a-cursor"}, 400),
        ({"status": "lost"}, 422),
        ({"doctorId": "Not A Doctor"}, 422),
        ({"from": "yesterday"}, 422),
        ({"from": "2031-05-05T08:00:00"}, 422),  # no timezone
        ({"limit": "0"}, 422),
        ({"limit": "101"}, 422),
    ],
)
async def test_bad_list_parameters_are_refused(
    client: AsyncClient, params: dict[str, str], status: int
) -> None:
    answer = await client.get("/bookings", params=params, headers=STAFF)
    assert answer.status_code == status
    assert answer.json()["detail"]


FILTERS: dict[str, Any] = {
    "status": BookingStatus.CONFIRMED,
    "doctor_id": "dr-test",
    "date_from": START,
    "date_to": START + timedelta(days=1),
    "patient_email": "p1@example.com",
}


def winning_stages(plan: dict[str, Any]) -> list[str]:
    stage = plan["queryPlanner"]["winningPlan"]
    found = []
    while stage:
        found.append(f"{stage['stage']}:{stage.get('indexName', '')}")
        stage = stage.get("inputStage") or next(iter(stage.get("inputStages", [])), None)
    return found


@pytest.mark.parametrize("with_cursor", [False, True])
async def test_every_filter_combination_is_served_by_an_index(with_cursor: bool) -> None:
    for n in range(20):
        await store(n, doctor_id="dr-test" if n % 2 else None)
    after = "2031-01-01T00:00:00.000000|x" if with_cursor else None
    for size in range(len(FILTERS) + 1):
        for names in itertools.combinations(FILTERS, size):
            where = BookingFilter(**{name: FILTERS[name] for name in names})
            plan = await page_cursor(where, after, 50).explain()
            stages = winning_stages(plan)
            assert not any(s.startswith("COLLSCAN") for s in stages), (names, stages)
            assert f"IXSCAN:{where.index()}" in stages, (names, stages)


async def test_the_count_of_every_filter_combination_is_served_by_an_index() -> None:
    for n in range(20):
        await store(n, doctor_id="dr-test" if n % 2 else None)
    # From one filter up: counting every booking reads them all, index or not.
    for size in range(1, len(FILTERS) + 1):
        for names in itertools.combinations(FILTERS, size):
            where = BookingFilter(**{name: FILTERS[name] for name in names})
            # The command count() sends: pymongo's count_documents, with its hint.
            command: dict[str, Any] = {
                "aggregate": Booking.get_pymongo_collection().name,
                "pipeline": [{"$match": where.query()}, {"$group": {"_id": 1, "n": {"$sum": 1}}}],
                "cursor": {},
            }
            if hint := where.hint():
                command["hint"] = hint
            database = Booking.get_pymongo_collection().database
            plan = await database.command({"explain": command})
            stages = winning_stages(plan["stages"][0]["$cursor"])
            assert not any(s.startswith("COLLSCAN") for s in stages), (names, stages)
            assert f"IXSCAN:{where.index()}" in stages, (names, stages)
