"""Bookings arriving together are stored in shared writes, each answered on its own."""

import asyncio
from datetime import timedelta

import pytest
from pymongo.errors import BulkWriteError

from clinic.intake import BookingInserts
from clinic.models import Booking, utcnow

pytestmark = pytest.mark.usefixtures("clean_db")


def booking(n: int, booking_id: str | None = None) -> Booking:
    fields = {"id": booking_id} if booking_id else {}
    return Booking(
        patient_name=f"Paciente {n}",
        patient_email=f"p{n}@example.com",
        date=utcnow() + timedelta(days=3, minutes=n),
        **fields,
    )


async def test_each_insert_returns_once_its_booking_is_stored() -> None:
    inserts = BookingInserts()

    async def insert_and_read(n: int) -> Booking | None:
        new = booking(n)
        await inserts.insert(new)
        return await Booking.get(new.id)

    found = await asyncio.gather(*(insert_and_read(n) for n in range(60)))

    assert all(b is not None for b in found)
    assert await Booking.find_all().count() == 60


async def test_a_failing_booking_fails_alone() -> None:
    inserts = BookingInserts()
    taken = booking(0, "same-id")
    await taken.insert()

    results = await asyncio.gather(
        *(inserts.insert(booking(n)) for n in range(1, 5)),
        inserts.insert(booking(5, "same-id")),
        return_exceptions=True,
    )

    assert results[:4] == [None] * 4
    assert isinstance(results[4], BulkWriteError)
    assert await Booking.find_all().count() == 5
