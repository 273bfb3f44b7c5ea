"""Bookings arriving together are stored in shared writes, each answered on its own."""

import asyncio
from datetime import timedelta

import pytest

from clinic.clock import utcnow
from clinic.store import bookings
from clinic.store.batching import Batched
from clinic.store.documents import Booking

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
    async def insert_and_read(n: int) -> Booking | None:
        new = booking(n)
        await bookings.insert(new)
        return await Booking.get(new.id)

    found = await asyncio.gather(*(insert_and_read(n) for n in range(60)))

    assert all(b is not None for b in found)
    assert await Booking.find_all().count() == 60


async def test_a_failing_booking_fails_alone() -> None:
    taken = booking(0, "same-id")
    await taken.insert()

    results = await asyncio.gather(
        *(bookings.insert(booking(n)) for n in range(1, 5)),
        bookings.insert(booking(5, "same-id")),
        return_exceptions=True,
    )

    assert results == [True] * 4 + [False]  # the taken id, and only it
    assert await Booking.find_all().count() == 5


async def test_calls_that_arrive_together_share_one_call_and_each_gets_its_result() -> None:
    calls: list[list[int]] = []
    running = asyncio.Event()

    async def double(numbers: list[int]) -> list[int | BaseException]:
        calls.append(numbers)
        running.set()
        await asyncio.sleep(0.01)
        return [ValueError(n) if n == 3 else 2 * n for n in numbers]

    doubled: Batched[int, int] = Batched(double)
    first = asyncio.create_task(doubled.run(0))
    await running.wait()  # the first call is running
    results = await asyncio.gather(*(doubled.run(n) for n in range(1, 6)), return_exceptions=True)

    assert await first == 0
    assert results[:2] == [2, 4]
    assert isinstance(results[2], ValueError)
    assert results[3:] == [8, 10]
    assert calls == [[0], [1, 2, 3, 4, 5]]  # the rest arrived during the first call


async def test_a_failed_call_fails_each_of_its_callers_and_the_next_call_runs() -> None:
    async def flaky(numbers: list[int]) -> list[int | BaseException]:
        if 0 in numbers:
            raise ConnectionError("database down")
        return [*numbers]

    echoed: Batched[int, int] = Batched(flaky)
    results = await asyncio.gather(echoed.run(0), return_exceptions=True)

    assert isinstance(results[0], ConnectionError)
    assert await echoed.run(7) == 7
