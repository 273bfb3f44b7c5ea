"""The outbox: a stored booking always reaches the booking workers, sooner or later.

The API stores a booking first, with ``request_published: false`` and a
``publish_after`` deadline, answers 202, and then publishes its request. When
that publish is confirmed by the broker, a ``PublishedMessage`` records it. If
the broker was down, or the API died in between, there is no record, and the
relay running in the booking workers publishes the request once the deadline
has passed. A request published twice is harmless: deciding a booking is
idempotent.

Status changes that no message will bring back (a cancellation, a decision
whose announcement still failed when its request was parked) work the same
way: each sets ``announce_after``, announcing it clears it, and the relay
announces whatever is still unannounced after the grace period. A worker's
own decisions need none of this: the request is acked only after the
announcement, so a crash redelivers it and the redelivery announces.
"""

import asyncio
import logging
from contextlib import suppress
from datetime import timedelta

from beanie.operators import In
from pymongo import ASCENDING, ReturnDocument

from clinic.announcements import announce
from clinic.batching import inserts_of
from clinic.database import DatabaseUnavailable
from clinic.messages import BookAppointment
from clinic.models import (
    RELAY_UNPUBLISHED,
    Booking,
    PublishedMessage,
    utcnow,
)
from clinic.settings import settings
from clinic.topology import booking_request_publisher

log = logging.getLogger("clinic.outbox")

RELAY_BATCH = 500
"""Most requests one relay scan publishes, so a backlog never starves the shutdown."""


_published_marks = inserts_of(PublishedMessage)
"""Records of confirmed publishes, written together when they come together."""


async def _publish(booking_id: str) -> None:
    async with asyncio.timeout(settings.publish_timeout):
        await booking_request_publisher.publish(
            BookAppointment(booking_id=booking_id), correlation_id=booking_id, message_id=booking_id
        )


async def publish_request(booking_id: str) -> None:
    """Hand the booking to the workers and record that the broker confirmed it."""
    await _publish(booking_id)
    await Booking.get_pymongo_collection().update_one(
        {"_id": booking_id}, {"$set": {"request_published": True, "publish_error": None}}
    )


async def hand_over(booking_id: str) -> None:
    """Publish a just-stored booking's request; on failure leave it to the relay."""
    try:
        await _publish(booking_id)
        # Lost if this fails or the process dies now: the relay then publishes it
        # once more, which is harmless.
        await _published_marks.run(PublishedMessage(id=booking_id))
    except Exception as exc:  # noqa: BLE001 - whatever failed, the relay retries it
        log.warning(
            "request not published yet, the outbox relay will: %r",
            exc,
            extra={"booking_id": booking_id},
        )
        with suppress(DatabaseUnavailable):
            await Booking.get_pymongo_collection().update_one(
                {"_id": booking_id}, {"$set": {"publish_error": repr(exc)[:500]}}
            )


async def _settle_published() -> None:
    """Take the overdue bookings whose publish the API recorded out of the relay's way."""
    due = await (
        Booking.get_pymongo_collection()
        .find({**RELAY_UNPUBLISHED, "publish_after": {"$lte": utcnow()}}, {"_id": True})
        .hint("relay_unpublished")
        .sort("publish_after", ASCENDING)
        .limit(RELAY_BATCH)
        .to_list()
    )
    if not due:
        return
    marked = PublishedMessage.find(In(PublishedMessage.id, [raw["_id"] for raw in due]))
    await _settle([mark.id for mark in await marked.to_list()])


async def _settle(published: list[str]) -> None:
    if published:
        await Booking.get_pymongo_collection().update_many(
            {"_id": {"$in": published}}, {"$set": {"request_published": True}}
        )


async def _take_due() -> str | None:
    """Lease the oldest overdue unpublished request: no other relay takes it for a grace period."""
    now = utcnow()
    raw = await Booking.get_pymongo_collection().find_one_and_update(
        {**RELAY_UNPUBLISHED, "publish_after": {"$lte": now}},
        {"$set": {"publish_after": now + timedelta(seconds=settings.outbox_grace)}},
        projection={"_id": True},
        sort=[("publish_after", ASCENDING)],
        hint="relay_unpublished",
    )
    return None if raw is None else str(raw["_id"])


async def _take_unannounced() -> Booking | None:
    """Lease the oldest status change still unannounced after its grace period."""
    now = utcnow()
    raw = await Booking.get_pymongo_collection().find_one_and_update(
        # The $type repeats the partial index's filter, so the index may serve it.
        {"announce_after": {"$type": "date", "$lte": now}},
        {"$set": {"announce_after": now + timedelta(seconds=settings.outbox_grace)}},
        sort=[("announce_after", ASCENDING)],
        return_document=ReturnDocument.AFTER,
        hint="relay_unannounced",
    )
    return None if raw is None else Booking.model_validate(raw)


async def relay_once() -> int:
    """Publish overdue requests and announcements (up to a batch each); how many in all."""
    await _settle_published()
    published = 0
    while published < RELAY_BATCH and (booking_id := await _take_due()) is not None:
        if await PublishedMessage.get(booking_id) is not None:  # recorded since the settling
            await _settle([booking_id])
            continue
        await publish_request(booking_id)
        log.info("request published by the outbox relay", extra={"booking_id": booking_id})
        published += 1
    announced = 0
    while announced < RELAY_BATCH and (booking := await _take_unannounced()) is not None:
        await announce(booking)
        log.info("status announced by the outbox relay", extra={"booking_id": booking.id})
        announced += 1
    return published + announced


async def run_relay(stop: asyncio.Event) -> None:
    """Scan for overdue requests every ``CLINIC_OUTBOX_INTERVAL`` seconds until ``stop``.

    A broker or database outage is logged when it starts and when it ends, not on
    every scan.
    """
    failure: Exception | None = None
    while not stop.is_set():
        try:
            published = await relay_once()
        except Exception as exc:  # noqa: BLE001 - an outage pauses the relay, never stops it
            if failure is None:
                log.warning(
                    "outbox relay paused, retrying every %gs: %r", settings.outbox_interval, exc
                )
            failure = exc
        else:
            # A scan proves the database is back, but only a publish proves the broker is:
            # a request that failed to publish is not due again for a grace period.
            if failure is not None and (published or isinstance(failure, DatabaseUnavailable)):
                log.info("outbox relay resumed")
                failure = None
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.outbox_interval)
