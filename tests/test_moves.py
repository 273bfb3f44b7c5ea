"""Moving an appointment with the manage token: to a free slot, never onto a taken one,
holding one slot at a time, through the same confirmation step, with the calendar
following. Through the API, with both handlers in this process (in-memory broker).
"""

import asyncio
from datetime import datetime, timedelta

import pytest
from faststream import FastStream
from httpx import AsyncClient
from icalendar import Calendar

from clinic.clock import utcnow
from clinic.domain.email_content import local_when
from clinic.domain.manage_tokens import new_manage_token
from clinic.domain.outbox import relay_once
from clinic.mail import Email
from clinic.messages import Language
from clinic.store.documents import Booking, SlotClaim
from clinic.store.slots import slot_key
from tests.conftest import STAFF, Mailbox, publishers_of

pytestmark = pytest.mark.usefixtures("clean_db")

T1 = (utcnow() + timedelta(days=30)).replace(hour=9, minute=0, second=0, microsecond=0)
T2, T3 = T1 + timedelta(hours=1), T1 + timedelta(hours=2)
DOCTOR = "dr-test"  # tests/doctors.json: any whole minute, around the clock


def bearer(booked: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {booked['manageToken']}"}


async def book(
    client: AsyncClient, when: datetime, email: str = "ann@example.com"
) -> dict[str, str]:
    body = {"patientName": "Ann Lee", "patientEmail": email, "date": when.isoformat()}
    created = await client.post("/book", json=body)
    assert created.status_code == 202, created.text
    booked: dict[str, str] = created.json()
    return booked


async def current(booked: dict[str, str]) -> Booking:
    booking = await Booking.get(booked["id"])
    assert booking is not None
    return booking


async def holders() -> dict[str, str]:
    """Every held slot, and the booking (or move) holding it."""
    return {claim.id: claim.booking_id for claim in await SlotClaim.find_all().to_list()}


def invite(email: Email) -> Calendar:
    calendar = Calendar.from_ical(email.calendar)
    assert isinstance(calendar, Calendar)
    return calendar


async def test_a_patient_moves_to_a_free_slot_and_the_old_one_is_free_again(
    client_and_handlers: AsyncClient, mailbox: Mailbox
) -> None:
    client = client_and_handlers
    ann = await book(client, T1)

    asked = await client.post(
        f"/booking/{ann['id']}/reschedule", json={"date": T2.isoformat()}, headers=bearer(ann)
    )

    assert asked.status_code == 202, asked.text
    assert asked.json()["pendingMove"]["date"].startswith(T2.strftime("%Y-%m-%dT%H:%M"))
    moved = await current(ann)
    assert (moved.date, moved.status, moved.pending_move) == (T2, "confirmed", None)
    assert await holders() == {slot_key(DOCTOR, T2): ann["id"]}
    confirmation, moved_email = mailbox.sent
    assert moved_email.subject.startswith("Su cita ha cambiado: ")
    assert "/manage/" in moved_email.body
    [before], [after] = invite(confirmation).events, invite(moved_email).events
    assert invite(moved_email).method == "REQUEST"
    assert (after.uid, after.start) == (before.uid, T2)
    assert after.sequence > before.sequence
    # The old time is free for another patient; the new one is not.
    assert (await current(await book(client, T1, "bo@example.com"))).status == "confirmed"
    taken = await current(await book(client, T2, "cy@example.com"))
    assert taken.reason_code == "slot_taken"


async def test_a_move_onto_a_taken_slot_is_refused_and_the_appointment_kept(
    client_and_handlers: AsyncClient, mailbox: Mailbox
) -> None:
    client = client_and_handlers
    ann, bo = await book(client, T1), await book(client, T2, "bo@example.com")

    asked = await client.post(
        f"/booking/{ann['id']}/reschedule", json={"date": T2.isoformat()}, headers=bearer(ann)
    )

    assert asked.status_code == 202
    kept = await current(ann)
    assert (kept.date, kept.status, kept.pending_move) == (T1, "confirmed", None)
    assert kept.last_move is not None
    assert kept.last_move.reason_code == "slot_taken"
    assert await holders() == {slot_key(DOCTOR, T1): ann["id"], slot_key(DOCTOR, T2): bo["id"]}
    refusal = mailbox.sent[-1]
    assert refusal.subject.startswith("No hemos podido cambiar su cita: ")
    assert "Motivo: esa hora ya está reservada." in refusal.body
    assert refusal.calendar == ""  # the calendar keeps the appointment as it was


async def test_moves_and_a_new_booking_racing_for_one_slot_never_double_book_it(
    client_and_handlers: AsyncClient,
) -> None:
    client = client_and_handlers
    ann, bo = await book(client, T1), await book(client, T2, "bo@example.com")

    def move(booked: dict[str, str]):  # type: ignore[no-untyped-def]
        return client.post(
            f"/booking/{booked['id']}/reschedule",
            json={"date": T3.isoformat()},
            headers=bearer(booked),
        )

    *moves, cy = await asyncio.gather(move(ann), move(bo), book(client, T3, "cy@example.com"))

    assert [answer.status_code for answer in moves] == [202, 202]
    bookings = [await current(booked) for booked in (ann, bo, cy)]
    at_t3 = [b.id for b in bookings if b.status == "confirmed" and b.date == T3]
    assert len(at_t3) == 1, bookings
    # Each confirmed booking holds exactly the slot of its time, and no other.
    held = await holders()
    confirmed = {slot_key(DOCTOR, b.date): b.id for b in bookings if b.status == "confirmed"}
    assert held == confirmed


async def test_what_cannot_be_moved_is_refused_at_once(client: AsyncClient) -> None:
    booking = Booking(
        patient_name="Ann Lee",
        patient_email="ann@example.com",
        date=T1,
        doctor_id=DOCTOR,
        status="confirmed",
        revision=1,
    )
    token, token_digest = new_manage_token(booking.id)
    booking.manage_token_digest = token_digest
    await booking.insert()
    await SlotClaim(
        id=slot_key(DOCTOR, T1), doctor_id=DOCTOR, start=T1, booking_id=booking.id
    ).insert()
    url, key = f"/booking/{booking.id}/reschedule", {"Authorization": f"Bearer {token}"}

    def to(when: datetime, **extra: str) -> dict[str, str]:
        return {"date": when.isoformat(), **extra}

    same = await client.post(url, json=to(T1), headers=key)
    off_slot = await client.post(url, json=to(T2 + timedelta(seconds=30)), headers=key)
    past = await client.post(url, json=to(utcnow() - timedelta(days=1)), headers=key)
    unknown_doctor = await client.post(url, json=to(T2, doctorId="dr-nobody"), headers=key)
    anonymous = await client.post(url, json=to(T2))
    wrong = await client.post(url, json=to(T2), headers=STAFF | {"Authorization": "Bearer x"})
    asked = await client.post(url, json=to(T2), headers=key)
    again = await client.post(url, json=to(T3), headers=key)

    assert same.status_code == 409
    assert same.json() == {"detail": "The appointment is already at that time."}
    assert off_slot.status_code == past.status_code == unknown_doctor.status_code == 422
    assert off_slot.json()["detail"][0]["type"] == "not_on_slot_boundary"
    assert past.json()["detail"][0]["type"] == "date_in_past"
    assert unknown_doctor.json()["detail"][0]["type"] == "doctor_unavailable"
    assert (anonymous.status_code, wrong.status_code) == (401, 404)
    assert asked.status_code == 202
    assert again.status_code == 409
    assert "being decided" in again.json()["detail"]
    stored = await Booking.get(booking.id)
    assert stored is not None
    assert stored.date == T1  # nothing moves until a worker decides
    assert stored.pending_move is not None
    assert stored.pending_move.date == T2


async def test_within_the_minimum_notice_only_staff_move_an_appointment(
    client_and_handlers: AsyncClient,
) -> None:
    client = client_and_handlers
    soon = (utcnow() + timedelta(hours=20)).replace(second=0, microsecond=0)
    ann = await book(client, soon)
    body = {"date": T2.isoformat()}

    refused = await client.post(f"/booking/{ann['id']}/reschedule", json=body, headers=bearer(ann))
    by_staff = await client.post(f"/booking/{ann['id']}/reschedule", json=body, headers=STAFF)

    assert refused.status_code == 409
    assert "please call us" in refused.json()["detail"]
    assert by_staff.status_code == 202
    assert (await current(ann)).date == T2


async def test_the_reminder_follows_the_moved_appointment(
    client_and_handlers: AsyncClient, both_handlers: FastStream, mailbox: Mailbox
) -> None:
    client = client_and_handlers
    ann = await book(client, T1)
    moved = await client.post(
        f"/booking/{ann['id']}/reschedule", json={"date": T2.isoformat()}, headers=bearer(ann)
    )
    assert moved.status_code == 202
    publishers, day = publishers_of(both_handlers), timedelta(hours=24)

    # The first time's reminder falls due first, and is dropped: its revision is gone.
    assert await relay_once(publishers, lambda: T1 - day + timedelta(seconds=1)) == 0
    assert await relay_once(publishers, lambda: T2 - day + timedelta(seconds=1)) == 1
    reminders = [e for e in mailbox.sent if e.subject.startswith("Recordatorio")]
    assert len(reminders) == 1
    assert local_when(T2, Language.ES) in reminders[0].subject
