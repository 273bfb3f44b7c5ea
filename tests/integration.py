"""Helpers of the integration tests: look into the real queues, wait for real bookings."""

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

import aio_pika

from clinic.messages import BookingStatus
from clinic.models import Booking, utcnow
from clinic.settings import settings
from clinic.topology import PARKED


async def queue(channel: aio_pika.abc.AbstractChannel, name: str) -> aio_pika.abc.AbstractQueue:
    return await channel.declare_queue(name, passive=True)


async def wait_for(predicate: Any, within: float = 20.0) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``within`` s."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if result := await predicate():
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"not reached within {within}s")


def next_monday() -> datetime:
    """Midnight, in the clinic's timezone, of a Monday at least a week ahead."""
    day = (utcnow() + timedelta(days=7)).date()
    day += timedelta(days=-day.weekday() % 7)
    return datetime.combine(day, datetime.min.time(), settings.zone)


async def stored_booking(days: int = 10, *, request_published: bool = False) -> Booking:
    """A pending booking in the database, ``days`` ahead; not published anywhere."""
    booking = Booking(
        patient_name="Juan Pérez",
        patient_email="juan@example.com",
        date=(utcnow() + timedelta(days=days)).replace(second=0, microsecond=0),
        request_published=request_published,
    )
    await booking.insert()
    return booking


async def terminal(booking_id: str) -> Booking | None:
    current = await Booking.get(booking_id)
    return current if current and current.status is not BookingStatus.PENDING else None


async def parked_messages(
    channel: aio_pika.abc.AbstractChannel,
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    parked = await queue(channel, PARKED.name)
    taken: list[aio_pika.abc.AbstractIncomingMessage] = []
    while (message := await parked.get(fail=False, no_ack=True)) is not None:
        taken.append(message)
    return taken
