"""A flood of bookings on the real processes: the backlog stays bounded, patients get through."""

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import aio_pika
import httpx
import pytest

from clinic.clock import utcnow
from clinic.messages import BookingStatus
from clinic.store.documents import Booking
from tests.conftest import vhost_rabbitmqctl
from tests.stack import Stack, wait_until_terminal

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180), pytest.mark.usefixtures("clean_db")]

MAX_PENDING = 20
FLOOD_SECONDS = 6.0
CONNECTIONS = 40


@pytest.fixture
def stack(tmp_path: Path, rabbit: aio_pika.abc.AbstractChannel) -> Iterator[Stack]:
    clinic = Stack(
        tmp_path,
        vhost_rabbitmqctl,
        CLINIC_MAX_PENDING=str(MAX_PENDING),
        CLINIC_CONFIRM_DELAY_MIN="0.3",
        CLINIC_CONFIRM_DELAY_MAX="0.3",
    )
    try:
        yield clinic
    finally:
        clinic.stop_all()


async def test_a_flood_is_turned_away_while_real_bookings_complete(stack: Stack) -> None:
    stack.api()
    stack.booking_worker()
    stack.notification_worker()
    await stack.wait_until_ready()
    slots = itertools.count()
    answers: Counter[int] = Counter()
    accepted: list[str] = []
    most_pending = 0

    def booking(name: str) -> dict[str, str]:
        when = utcnow() + timedelta(days=20, minutes=next(slots))
        date = when.strftime("%Y-%m-%dT%H:%M:00Z")
        return {"patientName": name, "patientEmail": "flood@example.com", "date": date}

    async def flood(client: httpx.AsyncClient, until: float) -> None:
        while time.monotonic() < until:
            response = await client.post("/book", json=booking("Flood"))
            answers[response.status_code] += 1
            if response.status_code == 503:
                assert int(response.headers["Retry-After"]) > 0
            if response.status_code == 202:
                accepted.append(response.json()["id"])

    async def watch_backlog(until: float) -> None:
        nonlocal most_pending
        while time.monotonic() < until:
            pending = await Booking.find(Booking.status == BookingStatus.PENDING).count()
            most_pending = max(most_pending, pending)
            await asyncio.sleep(0.1)

    async def patient(client: httpx.AsyncClient) -> tuple[str, float]:
        """A real patient, trying again whenever the clinic says it is busy; id and when."""
        while True:
            response = await client.post("/book", json=booking("Ana Ruiz"))
            if response.status_code == 202:
                return str(response.json()["id"]), time.monotonic()
            assert response.status_code == 503, response.text
            await asyncio.sleep(0.2)

    limits = httpx.Limits(max_connections=CONNECTIONS + 5)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30, limits=limits) as client:
        until = time.monotonic() + FLOOD_SECONDS
        flooders = [flood(client, until) for _ in range(CONNECTIONS)]
        patients = asyncio.gather(*(patient(client) for _ in range(3)))
        _, _, real = await asyncio.gather(asyncio.gather(*flooders), watch_backlog(until), patients)

    assert all(at < until for _, at in real), "a patient got through only after the flood"
    assert answers[503] > 0, answers  # the flood was turned away...
    assert set(answers) <= {202, 503}, answers  # ...and nothing else went wrong
    # Each API process may take the bookings of one count's interval past the threshold.
    assert most_pending <= MAX_PENDING + CONNECTIONS, most_pending
    decided = await wait_until_terminal([*accepted, *(i for i, _ in real)], within=90)
    assert {b.status for b in decided} == {BookingStatus.CONFIRMED}
