"""The parking queue, for operators: see what was parked and why, and re-drive it.

``clinic parked list`` and ``clinic parked replay [--all | ID ...]`` use these.
Replaying sends a parked message back to the queue it was parked from, with its
attempt count reset; handling is idempotent, so replaying a message twice still
decides its booking once and emails the patient once.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from clinic.messaging.retries import PARKED_AT_HEADER, PARKED_FROM_HEADER, PARKED_REASON_HEADER
from clinic.messaging.topology import PARKED, RETRY_QUEUE_OF

REPLAYABLE_QUEUES = frozenset(RETRY_QUEUE_OF)
_PARKING_HEADERS = frozenset({PARKED_AT_HEADER, PARKED_FROM_HEADER, PARKED_REASON_HEADER})


@dataclass(frozen=True)
class ParkedMessage:
    """What an operator needs to know about one parked message."""

    id: str
    origin: str
    booking_id: str
    parked_at: str
    reason: str


def describe(message: AbstractIncomingMessage) -> ParkedMessage:
    """The parked message as the operator sees it."""
    headers = message.headers or {}
    return ParkedMessage(
        id=message.message_id or "-",
        origin=str(headers.get(PARKED_FROM_HEADER, "?")),
        booking_id=message.correlation_id or "-",
        parked_at=str(headers.get(PARKED_AT_HEADER, "?")),
        reason=str(headers.get(PARKED_REASON_HEADER, "?")),
    )


@asynccontextmanager
async def _parked(
    rabbit_url: str,
) -> AsyncIterator[tuple[AbstractChannel, list[AbstractIncomingMessage]]]:
    """Every parked message, held unacknowledged; whatever is not acked goes back on exit."""
    connection = await aio_pika.connect(rabbit_url)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        queue = await channel.declare_queue(PARKED.name, passive=True)
        held: list[AbstractIncomingMessage] = []
        while (message := await queue.get(no_ack=False, fail=False)) is not None:
            held.append(message)
        yield channel, held
    finally:
        # Closing the channel returns every unacknowledged message to the queue.
        await connection.close()


async def list_parked(rabbit_url: str) -> list[ParkedMessage]:
    """The parked messages, oldest first, left where they are."""
    async with _parked(rabbit_url) as (_, held):
        return [describe(message) for message in held]


async def replay_parked(rabbit_url: str, ids: set[str] | None = None) -> list[ParkedMessage]:
    """Send parked messages (all, or those with the given ids) back to where they came from.

    Each is acknowledged in the parking queue only once the broker confirmed
    it back in its work queue, so a crash mid-replay loses nothing.
    """
    replayed: list[ParkedMessage] = []
    async with _parked(rabbit_url) as (channel, held):
        for message in held:
            parked = describe(message)
            if ids is not None and parked.id not in ids:
                continue
            if parked.origin not in REPLAYABLE_QUEUES:
                continue
            headers = {
                k: v for k, v in (message.headers or {}).items() if k not in _PARKING_HEADERS
            }
            await channel.default_exchange.publish(
                aio_pika.Message(
                    message.body,
                    headers=headers,
                    content_type=message.content_type,
                    correlation_id=message.correlation_id,
                    message_id=message.message_id,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=parked.origin,
                mandatory=True,
            )
            await message.ack()
            replayed.append(parked)
    return replayed


async def parked_about(rabbit_url: str, booking_ids: set[str]) -> list[dict[str, object]]:
    """The parked messages about these bookings, with their bodies, left where they are."""
    async with _parked(rabbit_url) as (_, held):
        return [
            {**asdict(describe(message)), "body": message.body.decode(errors="replace")}
            for message in held
            if message.correlation_id in booking_ids
        ]


async def remove_parked(rabbit_url: str, booking_ids: set[str]) -> int:
    """Delete the parked messages about these bookings; how many."""
    removed = 0
    async with _parked(rabbit_url) as (_, held):
        for message in held:
            if message.correlation_id in booking_ids:
                await message.ack()
                removed += 1
    return removed
