"""Working hours, slots and the clinic's timezone; who gets a slot, on the real database."""

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest

from clinic.clock import utcnow
from clinic.domain.cancellation import cancel
from clinic.domain.decisions import decide
from clinic.domain.email_content import compose_email
from clinic.domain.scheduling import day_slots, local_time, slot_problem
from clinic.messages import BookingStatus, BookingStatusChanged, RejectionCode
from clinic.store import slots
from clinic.store.documents import Booking, Doctor, SlotClaim
from tests.integration import next_monday

pytestmark = pytest.mark.usefixtures("clean_db")

# Europe/Madrid moves to summer time on 2027-03-28 and back on 2027-10-31 (Sundays).
SPRING_FORWARD, FALL_BACK = date(2027, 3, 28), date(2027, 10, 31)


def garcia(**changes: object) -> Doctor:
    fields: dict[str, object] = {
        "id": "dra-garcia",
        "name": "Dra. Lucía García",
        "specialty": "Medicina general",
        "working_hours": {
            "mon": [("09:00", "14:00"), ("16:00", "19:00")],
            "sun": [("00:00", "24:00")],
        },
        "slot_minutes": 30,
    }
    return Doctor.model_validate(fields | changes)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.mark.parametrize(
    ("start", "problem"),
    [
        ("2027-03-22T09:00:00+01:00", None),  # Monday, first slot
        ("2027-03-22T13:30:00+01:00", None),  # last slot of the morning ends at 14:00
        ("2027-03-22T16:30:00+01:00", None),
        ("2027-03-22T14:00:00+01:00", RejectionCode.OUTSIDE_WORKING_HOURS),  # lunch
        ("2027-03-22T08:30:00+01:00", RejectionCode.OUTSIDE_WORKING_HOURS),
        ("2027-03-22T13:45:00+01:00", RejectionCode.NOT_ON_SLOT_BOUNDARY),
        ("2027-03-22T09:10:00+01:00", RejectionCode.NOT_ON_SLOT_BOUNDARY),
        ("2027-03-22T09:00:30+01:00", RejectionCode.NOT_ON_SLOT_BOUNDARY),
        ("2027-03-23T09:00:00+01:00", RejectionCode.OUTSIDE_WORKING_HOURS),  # Tuesday
        # 09:00 in Madrid is 08:00 UTC in winter and 07:00 UTC in summer.
        ("2027-03-28T07:00:00+00:00", None),
        ("2027-03-22T09:00:00+00:00", None),  # 10:00 in Madrid
    ],
)
def test_slots_follow_working_hours_in_the_clinic_timezone(
    start: str, problem: RejectionCode | None
) -> None:
    assert slot_problem(garcia(), utc(start)) is problem


def test_an_inactive_doctor_has_no_slots() -> None:
    doctor = garcia(active=False)
    assert (
        slot_problem(doctor, utc("2027-03-22T09:00:00+01:00")) is RejectionCode.DOCTOR_UNAVAILABLE
    )
    assert day_slots(doctor, date(2027, 3, 22)) == []


def test_a_day_lists_its_slots_in_utc() -> None:
    slots = day_slots(garcia(), date(2027, 3, 22))
    assert len(slots) == 10 + 6
    assert slots[0] == utc("2027-03-22T08:00:00Z")
    assert slots[-1] == utc("2027-03-22T17:30:00Z")


def test_daylight_saving_days_skip_and_do_not_repeat_local_times() -> None:
    spring = day_slots(garcia(), SPRING_FORWARD)
    autumn = day_slots(garcia(), FALL_BACK)
    # 02:00 and 02:30 do not exist on the spring day; the autumn day offers 02:00 once.
    assert len(spring) == 48 - 2
    assert len(autumn) == 48
    assert utc("2027-03-28T09:00:00+02:00") in spring
    spring_local = [local_time(s).strftime("%H:%M") for s in spring]
    autumn_local = [local_time(s).strftime("%H:%M") for s in autumn]
    assert "02:00" not in spring_local
    assert "03:00" in spring_local
    assert autumn_local.count("02:00") == 1
    assert len(set(autumn)) == len(autumn)


def test_emails_show_the_local_time_with_its_offset_across_a_dst_change() -> None:
    def email_for(moment: str) -> str:
        event = BookingStatusChanged(
            booking_id="b",
            status=BookingStatus.CONFIRMED,
            date=utc(moment),
            doctor_name="Dra. Lucía García",
            occurred_at=utcnow(),
        )
        booking = Booking(
            patient_name="José Ñúñez", patient_email="jose@example.com", date=utc(moment)
        )
        return compose_email(event, booking).body

    winter, summer = email_for("2027-03-27T08:00:00Z"), email_for("2027-03-28T07:00:00Z")
    assert "sábado, 27 de marzo de 2027, 09:00 CET (UTC+01:00)" in winter
    assert "domingo, 28 de marzo de 2027, 09:00 CEST (UTC+02:00)" in summer
    assert "con Dra. Lucía García" in summer
    # The clinic speaks first: the name anyone may type never opens the email.
    assert summer.startswith("Su cita")


async def booking_at(when: datetime, doctor_id: str | None = None) -> Booking:
    booking = Booking(
        patient_name="Ana Ruiz", patient_email="ana@example.com", date=when, doctor_id=doctor_id
    )
    await booking.insert()
    return booking


def next_monday_at(hour: int) -> datetime:
    """A Monday at least a week ahead, at ``hour`` o'clock in Madrid (as UTC)."""
    return next_monday().replace(hour=hour).astimezone(UTC)


async def test_the_worker_rejects_what_the_doctor_cannot_take() -> None:
    await garcia().insert()
    await garcia(id="dr-off", active=False).insert()
    cases = [
        (await booking_at(next_monday_at(8), "dra-garcia"), RejectionCode.OUTSIDE_WORKING_HOURS),
        (
            await booking_at(next_monday_at(9) + timedelta(minutes=10), "dra-garcia"),
            RejectionCode.NOT_ON_SLOT_BOUNDARY,
        ),
        (await booking_at(next_monday_at(9), "dr-off"), RejectionCode.DOCTOR_UNAVAILABLE),
        (
            await booking_at(utcnow() - timedelta(minutes=1), "dra-garcia"),
            RejectionCode.DATE_IN_PAST,
        ),
    ]
    for booking, code in cases:
        decided = await decide(booking)
        assert decided.status is BookingStatus.REJECTED
        assert decided.reason_code is code
        assert decided.reason
    assert await SlotClaim.find_all().count() == 0


async def test_without_a_doctor_the_booking_goes_to_a_free_one() -> None:
    await Doctor.find_all().delete()  # only this test's doctors
    await garcia().insert()
    await garcia(id="dra-martin", name="Dra. Martín").insert()
    when = next_monday_at(10)
    first, second, third = [await booking_at(when) for _ in range(3)]

    decided = [await decide(b) for b in (first, second, third)]

    assert [d.status for d in decided] == [BookingStatus.CONFIRMED] * 2 + [BookingStatus.REJECTED]
    assert {decided[0].doctor_id, decided[1].doctor_id} == {"dra-garcia", "dra-martin"}
    assert decided[2].reason_code is RejectionCode.SLOT_TAKEN


async def test_a_redelivered_booking_keeps_the_slot_it_holds_and_never_takes_two() -> None:
    await Doctor.find_all().delete()  # only this test's doctors
    await garcia().insert()
    await garcia(id="dra-martin", name="Dra. Martín").insert()
    when = next_monday_at(10)
    booking = await booking_at(when)
    # The first delivery took Dra. Martín's slot (Dra. García's was taken then), and
    # the worker died before storing the decision.
    assert await slots.claim("dra-martin", when, booking.id) is not None

    decided = await decide(booking)

    assert decided.status is BookingStatus.CONFIRMED
    assert decided.doctor_id == "dra-martin"
    assert decided.doctor_name == "Dra. Martín"
    assert [claim.doctor_id for claim in await SlotClaim.find_all().to_list()] == ["dra-martin"]


async def test_racing_bookings_for_one_slot_confirm_exactly_one() -> None:
    await garcia().insert()
    when = next_monday_at(11)
    bookings = [await booking_at(when, "dra-garcia") for _ in range(8)]

    decided = await asyncio.gather(*(decide(b) for b in bookings))

    statuses = sorted(d.status.value for d in decided)
    assert statuses == ["confirmed"] + ["rejected"] * 7
    assert {d.reason_code for d in decided if d.status is BookingStatus.REJECTED} == {
        RejectionCode.SLOT_TAKEN
    }
    [claim] = await SlotClaim.find(SlotClaim.doctor_id == "dra-garcia").to_list()
    assert claim.start == when


async def test_a_redelivered_booking_whose_doctor_was_deactivated_gives_its_slot_back() -> None:
    await garcia().insert()
    when = next_monday_at(12)
    booking = await booking_at(when, "dra-garcia")
    # The first delivery claimed the slot; the doctor was deactivated before the retry.
    assert await slots.claim("dra-garcia", when, booking.id) is not None
    await Doctor.find_one(Doctor.id == "dra-garcia").set({"active": False})

    decided = await decide(booking)

    assert decided.status is BookingStatus.REJECTED
    assert decided.reason_code is RejectionCode.DOCTOR_UNAVAILABLE
    assert await SlotClaim.find_all().count() == 0, "a rejected booking kept its slot"


async def test_a_cancellation_racing_the_decision_leaves_the_booking_cancelled_and_free() -> None:
    await garcia().insert()
    bookings = [
        await booking_at(next_monday_at(9) + timedelta(minutes=30 * n), "dra-garcia")
        for n in range(6)
    ]

    # Each decision races its cancellation; which one the database sees first varies.
    await asyncio.gather(*(op for b in bookings for op in (decide(b), cancel(b.id))))
    # The worst order, made certain: cancelled after the worker read it as pending,
    # before it claimed the slot.
    late = await booking_at(next_monday_at(13), "dra-garcia")
    await cancel(late.id)
    await decide(late)

    for booking in [*bookings, late]:
        current = await Booking.get(booking.id)
        assert current is not None
        assert current.status is BookingStatus.CANCELLED
    assert await SlotClaim.find_all().count() == 0, "a cancelled booking holds a slot"
