"""The limits a clinic sets on POST /book, and the requests it refuses at once."""

from datetime import timedelta
from typing import Any
from unittest.mock import MagicMock

import pytest
from httpx import AsyncClient, Response

from clinic.api.rate_limits import WindowCounter
from clinic.clock import utcnow
from clinic.settings import settings
from clinic.store.documents import Booking, IdempotencyKey
from tests.conftest import STAFF

pytestmark = pytest.mark.usefixtures("clean_db")

NOW = utcnow().replace(second=0, microsecond=0)


def body(days: float = 10, minutes: int = 0, email: str = "juan@example.com") -> dict[str, Any]:
    when = NOW + timedelta(days=days, minutes=minutes)
    return {"patientName": "Juan Pérez", "patientEmail": email, "date": when.isoformat()}


def refused_with_retry(response: Response, within: float) -> float:
    """The 429's Retry-After, checked to be a clear answer."""
    assert response.status_code == 429, response.text
    assert response.json()["detail"]
    retry_after = float(response.headers["Retry-After"])
    assert 0 < retry_after <= within
    return retry_after


async def test_one_address_may_book_so_many_times_a_minute_but_staff_may_book_more(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "bookings_per_minute", 2)
    answers = [await client.post("/book", json=body(minutes=m)) for m in range(3)]
    by_staff = await client.post("/book", json=body(minutes=5), headers=STAFF)

    assert [a.status_code for a in answers[:2]] == [202, 202]
    refused_with_retry(answers[2], within=60)
    assert "2 bookings a minute" in answers[2].json()["detail"]
    assert by_staff.status_code == 202
    assert await Booking.find_all().count() == 3


async def test_one_address_may_book_so_many_times_a_day(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "bookings_per_day", 1)
    first = await client.post("/book", json=body())
    second = await client.post("/book", json=body(minutes=1))
    assert first.status_code == 202
    refused_with_retry(second, within=86400)
    assert "a day" in second.json()["detail"]


async def test_the_client_address_comes_from_a_proxy_only_when_it_is_trusted(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "bookings_per_minute", 1)

    async def from_(forwarded: str, minutes: int) -> int:
        headers = {"X-Forwarded-For": forwarded}
        return (await client.post("/book", json=body(minutes=minutes), headers=headers)).status_code

    # Not trusted: a client cannot pick a fresh address by sending the header.
    assert [await from_("10.0.0.1", 0), await from_("10.0.0.2", 1)] == [202, 429]
    monkeypatch.setattr(settings, "trusted_proxies", "127.0.0.1, ::1")
    # Trusted: the nearest hop the proxy did not add is the client, however long the chain.
    assert await from_("10.0.0.3", 2) == 202
    assert await from_("203.0.113.9, 10.0.0.3", 3) == 429  # the first hop was made up
    assert await from_("2001:db8::1", 4) == 202
    assert await from_("2001:db8::2", 5) == 429  # the same /64 network


def test_fixed_windows_count_per_address_and_start_afresh() -> None:
    minute = WindowCounter(60)
    assert minute.take("a", 1, now=120.0) is None
    assert minute.take("a", 1, now=150.0) == pytest.approx(30.0)
    assert minute.take("b", 1, now=150.0) is None
    assert minute.take("a", 1, now=180.0) is None


async def test_one_email_address_holds_so_many_upcoming_bookings(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "active_bookings_per_email", 2)
    first = await client.post("/book", json=body(days=2, email="Juan.Perez+a@Example.com"))
    await client.post("/book", json=body(days=5, email="juan.perez@example.com"))
    # The same mailbox, written another way.
    refused = await client.post("/book", json=body(days=8, email="JUAN.PEREZ+x@example.com"))
    other = await client.post("/book", json=body(days=8, email="ana@example.com"))

    wait = refused_with_retry(refused, within=3 * 86400)
    assert wait > 86400  # until the soonest of them has passed
    assert other.status_code == 202
    token = {"Authorization": f"Bearer {first.json()['manageToken']}"}
    await client.post(f"/booking/{first.json()['id']}/cancel", headers=token)
    again = await client.post("/book", json=body(days=8, email="JUAN.PEREZ+x@example.com"))
    assert again.status_code == 202


async def test_a_refused_request_leaves_its_idempotency_key_free(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "active_bookings_per_email", 1)
    await client.post("/book", json=body(days=2))
    key = {"Idempotency-Key": "after-a-429"}
    refused = await client.post("/book", json=body(days=3), headers=key)
    assert refused.status_code == 429
    assert await IdempotencyKey.get("after-a-429") is None
    # A retry with the same key is checked again, not waved through as a repeat.
    again = await client.post("/book", json=body(days=3), headers=key)
    assert again.status_code == 429


async def test_dates_beyond_the_horizon_wait_until_they_come_within_it(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "booking_horizon_days", 90)
    within = await client.post("/book", json=body(days=89))
    beyond = await client.post("/book", json=body(days=100))
    assert within.status_code == 202
    wait = refused_with_retry(beyond, within=10 * 86400 + 60)
    assert wait > 9 * 86400
    assert "90 days" in beyond.json()["detail"]


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"date": (NOW - timedelta(hours=1)).isoformat()}, "date_in_past", "date"),
        (
            {"date": (NOW + timedelta(days=3, seconds=30)).isoformat()},
            "not_on_slot_boundary",
            "date",
        ),
        ({"doctorId": "nobody"}, "doctor_unavailable", "doctorId"),
        (
            {"doctorId": "dra-manana", "date": "2031-06-16T18:00:00+02:00"},
            "outside_working_hours",
            "date",
        ),
        (
            {"doctorId": "dra-manana", "date": "2031-06-16T09:10:00+02:00"},
            "not_on_slot_boundary",
            "date",
        ),
    ],
)
async def test_a_request_that_can_never_succeed_is_422_with_the_workers_reason_code(
    client: AsyncClient,
    requests_published: MagicMock,
    change: dict[str, str],
    code: str,
    field: str,
) -> None:
    mornings = {
        "id": "dra-manana",
        "name": "Dra. Mañana",
        "specialty": "Medicina general",
        "workingHours": {"mon": [["09:00", "14:00"]]},
        "slotMinutes": 30,
    }
    assert (await client.post("/doctors", json=mornings, headers=STAFF)).status_code == 201

    response = await client.post("/book", json=body() | change)

    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["type"] == code
    assert problem["loc"] == ["body", field]
    assert await Booking.find_all().count() == 0
    requests_published.assert_not_called()


async def test_a_long_backlog_answers_503_with_retry_after(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch, requests_published: MagicMock
) -> None:
    # No worker runs beside this API: every booking stays pending.
    monkeypatch.setattr(settings, "max_pending", 3)
    answers = [(await client.post("/book", json=body(minutes=m))).status_code for m in range(8)]

    assert answers[:4] == [202] * 4
    assert set(answers[4:]) == {503}
    refused = await client.post("/book", json=body(minutes=9))
    assert int(refused.headers["Retry-After"]) > 0
    assert "try again" in refused.json()["detail"]
    assert await Booking.find_all().count() == 4


async def test_the_email_limit_can_be_turned_off(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "active_bookings_per_email", 0)
    answers = [await client.post("/book", json=body(days=2 + n)) for n in range(5)]
    assert [a.status_code for a in answers] == [202] * 5
