"""The broker of one process, and the publishers everything it sends goes through.

Each app (the API, each worker app) makes its own broker with ``new_broker()``,
so building one app never adds handlers to another.
"""

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from faststream.rabbit import Channel, RabbitBroker
from faststream.rabbit.publisher import RabbitPublisher

from clinic.messages import (
    BookAppointment,
    BookingEvent,
    PatientEvent,
)
from clinic.messaging.message_metrics import MessageMetrics
from clinic.messaging.topology import BOOKING_REQUESTS, NOTIFICATIONS, PARKED
from clinic.settings import settings
from clinic.tracing import broker_middlewares


def new_broker() -> RabbitBroker:
    """A broker on ``CLINIC_RABBIT_URL`` whose every publish waits for the broker's confirm."""
    return RabbitBroker(
        settings.rabbit_url,
        # A returned (unroutable) publish raises, so a message is never silently lost;
        # publisher confirms make each publish wait until the broker is responsible for it.
        default_channel=Channel(publisher_confirms=True, on_return_raises=True),
        graceful_timeout=settings.graceful_timeout,
        # Per-message "received/processed" lines would cost a third of consume
        # throughput; they stay available at DEBUG.
        log_level=logging.DEBUG,
        # A logger, not FastStream's default: that one brings a handler and format of its
        # own. Its lines carry the queue, exchange and message id, which ours keep.
        logger=logging.getLogger("faststream.access.rabbit"),
        description="Clinic appointment booking: requests, retries and status notifications.",
        # While tracing is on, a span of each publish and consume, outermost so that it
        # covers the rest; then messages consumed and published, per queue, on /metrics.
        middlewares=(*broker_middlewares(), MessageMetrics()),
    )


COUNTING_CHANNEL = Channel(publisher_confirms=False)
"""A channel of its own for counting: a passive declaration of a missing queue closes it."""


async def waiting_requests(broker: RabbitBroker) -> int:
    """How many booking requests wait in ``booking_requests`` for a worker to take them."""
    async with asyncio.timeout(settings.publish_timeout):
        channel = await broker.config.channel_manager.get_channel(COUNTING_CHANNEL)
        # Passive: counting never creates the queue again. The channel hands back the
        # queue it declared first, with that declaration's count: declare it again.
        queue = await channel.declare_queue(BOOKING_REQUESTS.name, passive=True)
        declared = await queue.declare()
    return int(declared.message_count or 0)


def worker_channel() -> Channel:
    """A consumer channel whose prefetch bounds how many messages a worker handles at once."""
    return Channel(prefetch_count=settings.prefetch)


@dataclass(frozen=True)
class Publishers:
    """Where the clinic's messages leave a process: one publisher per destination."""

    booking_requests: RabbitPublisher
    status_changes: RabbitPublisher
    parked: RabbitPublisher

    @classmethod
    def on(cls, broker: RabbitBroker) -> "Publishers":
        """Declare the clinic's publishers on ``broker`` (they document its AsyncAPI too)."""
        return cls(
            booking_requests=broker.publisher(
                BOOKING_REQUESTS,
                persist=True,
                schema=BookAppointment,
                title="booking_requests:publish",
                description="The API asks a booking worker to confirm or reject a stored booking.",
            ),
            status_changes=broker.publisher(
                exchange=NOTIFICATIONS,
                persist=True,
                schema=BookingEvent,
                title="booking_notifications:publish",
                description=(
                    "Every booking status change, and every appointment reminder falling due "
                    "(AppointmentReminderDue, told apart by the event field), fanned out to "
                    "all notification services."
                ),
            ),
            parked=broker.publisher(
                PARKED,
                persist=True,
                title="parked_messages:publish",
                description=(
                    "Messages that can never succeed or ran out of retries, kept with the "
                    "reason (header x-parked-reason) and origin (x-parked-from) until an "
                    "operator replays them."
                ),
            ),
        )

    async def request_decision(self, booking_id: str, what: str | None = None) -> None:
        """Ask the booking workers to decide a stored booking, or the move of it named
        ``what``; returns once the broker has it."""
        async with asyncio.timeout(settings.publish_timeout):
            await self.booking_requests.publish(
                BookAppointment(booking_id=booking_id),
                correlation_id=booking_id,
                message_id=booking_id if what is None else f"{booking_id}:{what}",
            )

    async def announce(self, event: PatientEvent) -> None:
        """Fan an event out; its message id names the change (or the reminder), so copies
        can be told apart."""
        async with asyncio.timeout(settings.publish_timeout):
            await self.status_changes.publish(
                event,
                correlation_id=event.booking_id,
                message_id=f"{event.booking_id}:{event.change}",
            )

    async def park(self, body: bytes, **properties: Any) -> None:
        """Keep a message in the parking queue, with the headers and ids given."""
        async with asyncio.timeout(settings.publish_timeout):
            await self.parked.publish(body, **properties)
