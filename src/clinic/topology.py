"""The broker and every queue, exchange and publisher, declared once.

Flow of a booking request::

    API ──▶ booking_requests ──(reject)──▶ clinic_dead_letter ──▶ booking_retry
                 ▲                                                     │ TTL
                 └──────────────────(expired)──────────────────────────┘

and of a status change::

    booking worker ──▶ booking_notifications (fanout) ──▶ email_notifications (+ any other)

Messages that can never succeed, or that ran out of retries, are parked in
``parked_messages`` with the reason in their headers.
"""

import logging
from typing import TYPE_CHECKING, Any, cast

from faststream.rabbit import (
    Channel,
    ExchangeType,
    QueueType,
    RabbitBroker,
    RabbitExchange,
    RabbitQueue,
)

from clinic.messages import BookAppointment, BookingStatusChanged
from clinic.settings import settings

if TYPE_CHECKING:
    from faststream.rabbit.schemas.queue import ClassicQueueArgs, QuorumQueueArgs

# A returned (unroutable) publish must raise, so a booking is never silently lost;
# publisher confirms make every publish wait for the broker to take responsibility.
broker = RabbitBroker(
    settings.rabbit_url,
    default_channel=Channel(publisher_confirms=True, on_return_raises=True),
    graceful_timeout=settings.graceful_timeout,
    # Per-message "received/processed" lines cost about a third of consume
    # throughput; they stay available at DEBUG.
    log_level=logging.DEBUG,
    description="Clinic appointment booking: requests, retries and status notifications.",
)

# Consumers get their own channel so that prefetch bounds each worker's concurrency.
worker_channel = Channel(prefetch_count=settings.prefetch)

DEAD_LETTER_EXCHANGE = RabbitExchange("clinic_dead_letter", type=ExchangeType.DIRECT, durable=True)
NOTIFICATIONS_EXCHANGE = RabbitExchange(
    "booking_notifications", type=ExchangeType.FANOUT, durable=True
)
DEFAULT_EXCHANGE = ""
QUEUE_TYPE = QueueType(settings.queue_type)


def _durable_queue(name: str, routing_key: str = "", **arguments: Any) -> RabbitQueue:
    """A durable queue of the configured type (classic, or quorum for clusters)."""
    if QUEUE_TYPE is QueueType.QUORUM and "x-dead-letter-exchange" in arguments:
        # Quorum queues can dead-letter at least once instead of at most once;
        # that needs publishers refused, rather than messages dropped, when full.
        arguments |= {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
    if QUEUE_TYPE is QueueType.QUORUM:
        quorum = cast("QuorumQueueArgs", arguments)
        return RabbitQueue(
            name, QueueType.QUORUM, durable=True, routing_key=routing_key, arguments=quorum
        )
    classic = cast("ClassicQueueArgs", arguments)
    return RabbitQueue(name, durable=True, routing_key=routing_key, arguments=classic)


def _retry_pair(work: str, retry: str) -> tuple[RabbitQueue, RabbitQueue]:
    """A work queue whose rejects wait ``retry_delay`` in ``retry`` and then come back."""
    work_queue = _durable_queue(
        work,
        **{
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE.name,
            "x-dead-letter-routing-key": retry,
        },
    )
    retry_queue = _durable_queue(
        retry,
        routing_key=retry,
        **{
            "x-message-ttl": round(settings.retry_delay * 1000),
            # The default exchange routes by queue name: expired messages go back to work.
            "x-dead-letter-exchange": DEFAULT_EXCHANGE,
            "x-dead-letter-routing-key": work,
        },
    )
    return work_queue, retry_queue


BOOKING_REQUESTS, BOOKING_RETRY = _retry_pair("booking_requests", "booking_retry")
EMAIL_NOTIFICATIONS, EMAIL_RETRY = _retry_pair("email_notifications", "email_retry")
PARKED = _durable_queue("parked_messages")

booking_request_publisher = broker.publisher(
    BOOKING_REQUESTS,
    persist=True,
    schema=BookAppointment,
    title="booking_requests:publish",
    description="The API asks a booking worker to confirm or reject a stored booking.",
)
status_publisher = broker.publisher(
    exchange=NOTIFICATIONS_EXCHANGE,
    persist=True,
    schema=BookingStatusChanged,
    title="booking_notifications:publish",
    description="Every booking status change, fanned out to all notification services.",
)
parking_publisher = broker.publisher(
    PARKED,
    persist=True,
    title="parked_messages:publish",
    description=(
        "Messages that can never succeed or ran out of retries, kept with the reason "
        "(header x-parked-reason) and origin (x-parked-from) until an operator replays them."
    ),
)


async def declare_topology(rabbit_url: str | None = None) -> None:
    """Declare every exchange, queue and binding, so nothing published is unroutable."""
    # Over a connection of its own: FastStream remembers a queue declared through a
    # broker, and a subscriber starting later would consume on the declaring channel,
    # without its prefetch, so one worker would take every waiting message at once.
    url = rabbit_url or settings.rabbit_url
    async with RabbitBroker(url, log_level=logging.DEBUG) as declarer:
        dead_letter = await declarer.declare_exchange(DEAD_LETTER_EXCHANGE)
        notifications = await declarer.declare_exchange(NOTIFICATIONS_EXCHANGE)
        for queue in (BOOKING_REQUESTS, PARKED):
            await declarer.declare_queue(queue)
        for retry in (BOOKING_RETRY, EMAIL_RETRY):
            declared = await declarer.declare_queue(retry)
            await declared.bind(dead_letter, routing_key=retry.routing())
        email = await declarer.declare_queue(EMAIL_NOTIFICATIONS)
        await email.bind(notifications)
