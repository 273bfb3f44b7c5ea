"""Every exchange and queue of the clinic, written out as the design draws them.

A booking request::

    API ──▶ booking_requests ──(reject)──▶ clinic_dead_letter ──▶ booking_retry
                 ▲                                                     │ TTL
                 └──────────────────(expired)──────────────────────────┘

A status change::

    booking worker ──▶ booking_notifications (fanout) ──▶ email_notifications (+ any other)
                                                              │ (reject) ▲ (expired)
                                                              ▼          │
                                                      clinic_dead_letter ──▶ email_retry

Messages that can never succeed, or that ran out of retries, are parked in
``parked_messages`` with the reason in their headers (see ``clinic.messaging.retries``).
"""

import logging
from typing import Any

from faststream.rabbit import ExchangeType, QueueType, RabbitBroker, RabbitExchange, RabbitQueue

from clinic.settings import settings

DEAD_LETTER = RabbitExchange("clinic_dead_letter", type=ExchangeType.DIRECT, durable=True)
"""Where a work queue sends what its consumer rejected, keyed by the retry queue's name."""
NOTIFICATIONS = RabbitExchange("booking_notifications", type=ExchangeType.FANOUT, durable=True)
"""Every booking status change, to every queue bound to it."""

QUEUE_TYPE = QueueType(settings.queue_type)
RETRY_TTL_MS = round(settings.retry_delay * 1000)
DEFAULT_EXCHANGE = ""
"""RabbitMQ's default exchange routes by queue name: an expired retry goes back to work."""

AT_LEAST_ONCE: dict[str, Any] = (
    # Quorum queues can dead-letter at least once (classic queues: at most once); that
    # needs publishers refused, rather than messages dropped, when a queue is full.
    {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
    if QUEUE_TYPE is QueueType.QUORUM
    else {}
)

ARGUMENTS: dict[str, dict[str, Any]] = {
    # A rejected request waits in booking_retry, then goes back to work.
    "booking_requests": {
        "x-dead-letter-exchange": DEAD_LETTER.name,
        "x-dead-letter-routing-key": "booking_retry",
    },
    "booking_retry": {
        "x-message-ttl": RETRY_TTL_MS,
        "x-dead-letter-exchange": DEFAULT_EXCHANGE,
        "x-dead-letter-routing-key": "booking_requests",
    },
    # A failed email waits in email_retry, then goes back to work.
    "email_notifications": {
        "x-dead-letter-exchange": DEAD_LETTER.name,
        "x-dead-letter-routing-key": "email_retry",
    },
    "email_retry": {
        "x-message-ttl": RETRY_TTL_MS,
        "x-dead-letter-exchange": DEFAULT_EXCHANGE,
        "x-dead-letter-routing-key": "email_notifications",
    },
    # Kept until an operator replays it (see clinic.messaging.parking).
    "parked_messages": {},
}
"""Every queue, by name, with its arguments: all durable, of type ``CLINIC_QUEUE_TYPE``."""

BOOKING_REQUESTS, BOOKING_RETRY, EMAIL_NOTIFICATIONS, EMAIL_RETRY, PARKED = (
    RabbitQueue(
        name,
        QUEUE_TYPE,  # type: ignore[call-overload]  # classic or quorum, as configured
        durable=True,
        arguments=arguments | (AT_LEAST_ONCE if arguments else {}),
    )
    for name, arguments in ARGUMENTS.items()
)
QUEUES = (BOOKING_REQUESTS, BOOKING_RETRY, EMAIL_NOTIFICATIONS, EMAIL_RETRY, PARKED)
RETRY_QUEUE_OF = {BOOKING_REQUESTS.name: BOOKING_RETRY, EMAIL_NOTIFICATIONS.name: EMAIL_RETRY}
"""Each work queue, and the retry queue its rejected messages wait in."""


async def declare_topology(rabbit_url: str | None = None) -> None:
    """Declare every exchange, queue and binding, so nothing published is unroutable."""
    # Over a connection of its own: FastStream remembers a queue declared through a
    # broker, and a subscriber starting later would consume on the declaring channel,
    # without its prefetch, so one worker would take every waiting message at once.
    # FastStream's default logger would bring its own handler and format: see new_broker().
    logger = logging.getLogger("faststream.access.rabbit")
    url = rabbit_url or settings.rabbit_url
    async with RabbitBroker(url, log_level=logging.DEBUG, logger=logger) as declarer:
        dead_letter = await declarer.declare_exchange(DEAD_LETTER)
        notifications = await declarer.declare_exchange(NOTIFICATIONS)
        for queue in QUEUES:
            await declarer.declare_queue(queue)
        for retry in RETRY_QUEUE_OF.values():
            declared = await declarer.declare_queue(retry)
            await declared.bind(dead_letter, routing_key=retry.name)
        email = await declarer.declare_queue(EMAIL_NOTIFICATIONS)
        await email.bind(notifications)
