"""Helpers of the integration tests: look into the real queues, wait for real bookings."""

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import aio_pika

from clinic.clock import utcnow
from clinic.messages import BookingStatus
from clinic.messaging.topology import PARKED
from clinic.settings import settings
from clinic.store.documents import Booking, OutboxRecord


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


async def stored_booking(days: int = 10, email: str = "juan@example.com") -> Booking:
    """A pending booking for ``email`` in the database, ``days`` ahead; not published anywhere."""
    booking = Booking(
        patient_name="Juan Pérez",
        patient_email=email,
        date=(utcnow() + timedelta(days=days)).replace(second=0, microsecond=0),
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


WORK_QUEUES = ("booking_requests", "booking_retry", "email_notifications", "email_retry")


def queue_depths(rabbitmqctl: Callable[..., str], column: str = "messages") -> dict[str, int]:
    """Each queue of a vhost, with its ``messages`` (ready and unacknowledged alike)
    or another ``rabbitmqctl list_queues`` column, such as ``messages_unacknowledged``."""
    listed = rabbitmqctl("list_queues", "name", column)
    depths = {}
    for line in listed.splitlines():
        name, _, count = line.rpartition("\t")
        if count.isdigit():
            depths[name] = int(count)
    return depths


async def settled(rabbitmqctl: Callable[..., str]) -> bool:
    """Whether nothing more can happen: every work and retry queue is empty, acks
    included, and nothing in the outbox is unsent.

    A worker publishes what follows from a message before it acks it, and the relay
    sends only unsent records: once this holds, no decision or email is on its way.
    A reminder still to fall due is not on its way yet.
    """
    depths = await asyncio.to_thread(queue_depths, rabbitmqctl)
    if any(depths.get(name, 0) for name in WORK_QUEUES):
        return False
    if await Booking.find({"request_due_at": {"$ne": None}, "status": "pending"}).count():
        return False
    waiting = {"due_at": {"$ne": None}, "recorded_at": {"$not": {"$gt": utcnow()}}}
    return await OutboxRecord.find(waiting).count() == 0


async def wait_until_settled(rabbitmqctl: Callable[..., str], within: float = 30.0) -> None:
    """Wait until nothing more can happen (see ``settled``)."""
    await wait_for(lambda: settled(rabbitmqctl), within=within)
