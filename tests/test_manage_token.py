"""The manage token opens a booking's patient data; the booking id alone shows only its status."""

import hashlib
import logging
from datetime import timedelta

import pytest
from httpx import AsyncClient, Response

from clinic.clock import utcnow
from clinic.domain.manage_tokens import derived_token
from clinic.logs import MaskedFormatter
from clinic.settings import settings
from clinic.store.documents import Booking
from tests.conftest import RECEPTION, STAFF

pytestmark = pytest.mark.usefixtures("clean_db")

FUTURE = (utcnow() + timedelta(days=30)).strftime("%Y-%m-%dT10:30:00Z")
VALID = {"patientName": "Juan Pérez", "patientEmail": "juan@example.com", "date": FUTURE}
PERSONAL = {"patientName", "patientEmail", "date", "doctorId"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def book(client: AsyncClient, **headers: str) -> Response:
    response = await client.post("/book", json=VALID, headers=headers)
    assert response.status_code in {200, 202}, response.text
    return response


async def test_booking_answers_a_token_once_and_stores_only_its_digest(client: AsyncClient) -> None:
    created = (await book(client)).json()
    token = created["manageToken"]

    assert len(token) >= 43
    stored = await Booking.get(created["id"])
    assert stored is not None
    assert token not in stored.model_dump_json()
    assert stored.manage_token_digest == hashlib.sha256(token.encode()).hexdigest()
    again = await client.get(f"/booking/{created['id']}", headers=bearer(token))
    assert "manageToken" not in again.json()


async def test_without_its_token_a_booking_shows_its_status_and_nothing_personal(
    client: AsyncClient,
) -> None:
    created = (await book(client)).json()

    response = await client.get(f"/booking/{created['id']}")

    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    assert not PERSONAL & response.json().keys()
    assert "juan" not in response.text.lower()


@pytest.mark.parametrize("who", ["the token", "staff"])
async def test_the_token_or_a_staff_token_shows_the_patient_never_cached(
    client: AsyncClient, who: str
) -> None:
    created = (await book(client)).json()
    headers = bearer(created["manageToken"]) if who == "the token" else STAFF

    response = await client.get(f"/booking/{created['id']}", headers=headers)

    assert response.status_code == 200
    assert response.json()["patientEmail"] == "juan@example.com"
    assert response.headers["Cache-Control"] == "no-store"


async def test_answers_with_patient_data_are_never_cached(client: AsyncClient) -> None:
    created = await book(client)
    listed = await client.get("/bookings", headers=STAFF)
    cancelled = await client.post(
        f"/booking/{created.json()['id']}/cancel", headers=bearer(created.json()["manageToken"])
    )
    for response in (created, listed, cancelled):
        assert response.headers["Cache-Control"] == "no-store", response.request.url


async def test_a_wrong_token_is_answered_as_if_there_were_no_booking(client: AsyncClient) -> None:
    created = (await book(client)).json()
    other = (await book(client)).json()
    wrong = bearer(other["manageToken"])

    looked = await client.get(f"/booking/{created['id']}", headers=wrong)
    cancelled = await client.post(f"/booking/{created['id']}/cancel", headers=wrong)
    missing = await client.post("/booking/no-such-booking/cancel", headers=wrong)

    assert looked.status_code == cancelled.status_code == missing.status_code == 404
    assert looked.json() == cancelled.json() == missing.json()
    current = await Booking.get(created["id"])
    assert current is not None
    assert current.status == "pending"


async def test_once_the_appointment_has_begun_its_token_opens_nothing(
    client: AsyncClient,
) -> None:
    created = (await book(client)).json()
    token = bearer(created["manageToken"])
    stored = await Booking.get(created["id"])
    assert stored is not None
    await stored.set({"date": utcnow() - timedelta(minutes=1)})

    looked = await client.get(f"/booking/{created['id']}", headers=token)
    cancelled = await client.post(f"/booking/{created['id']}/cancel", headers=token)
    missing = await client.get("/booking/no-such-booking", headers=token)

    # Answered as a wrong token is: nothing tells an expired token from a made-up one.
    assert looked.status_code == cancelled.status_code == missing.status_code == 404
    assert looked.json() == cancelled.json() == missing.json()
    assert (await client.get(f"/booking/{created['id']}", headers=STAFF)).status_code == 200


async def test_cancelling_needs_a_token(client: AsyncClient) -> None:
    created = (await book(client)).json()
    response = await client.delete(f"/booking/{created['id']}")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    current = await Booking.get(created["id"])
    assert current is not None
    assert current.status == "pending"


async def test_a_repeated_request_gets_the_same_token_derived_from_the_key(
    client: AsyncClient,
) -> None:
    # The first answer was lost: the client retries with the same Idempotency-Key.
    first = (await book(client, **{"Idempotency-Key": "lost-answer"})).json()
    again = (await book(client, **{"Idempotency-Key": "lost-answer"})).json()

    assert again["id"] == first["id"]
    # The same token the emails' link carries, so that link keeps working too.
    assert again["manageToken"] == first["manageToken"] == derived_token(first["id"])
    opened = await client.get(f"/booking/{first['id']}", headers=bearer(first["manageToken"]))
    assert opened.status_code == 200


async def test_without_a_key_a_repeated_request_gets_a_new_token_and_the_old_one_stops_working(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "manage_token_key", "")
    first = (await book(client, **{"Idempotency-Key": "lost-answer"})).json()
    again = (await book(client, **{"Idempotency-Key": "lost-answer"})).json()

    assert again["id"] == first["id"]
    assert again["manageToken"] != first["manageToken"]
    opened = await client.get(f"/booking/{first['id']}", headers=bearer(again["manageToken"]))
    refused = await client.get(f"/booking/{first['id']}", headers=bearer(first["manageToken"]))
    assert opened.status_code == 200
    assert refused.status_code == 404


async def test_staff_reads_are_audited_by_token_name_with_masked_filters(
    client: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    created = (await book(client)).json()
    with caplog.at_level(logging.INFO, logger="clinic.audit"):
        await client.get("/bookings", params={"patientEmail": "juan@example.com"}, headers=STAFF)
        await client.get(f"/booking/{created['id']}", headers=RECEPTION)
        await client.get(f"/booking/{created['id']}", headers=bearer(created["manageToken"]))

    lines = [MaskedFormatter().format(r) for r in caplog.records if r.name == "clinic.audit"]
    assert len(lines) == 2, lines
    listing, lookup = lines
    assert "staff 'records' read the booking list" in listing
    assert "j***@example.com" in listing
    assert f"staff 'reception' read booking {created['id']}" in lookup
    for line in lines:
        assert "juan@example.com" not in line
        assert "token-0123456789" not in line
        assert created["manageToken"] not in line
