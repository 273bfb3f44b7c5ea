"""The outbox: whatever must leave the clinic does, sooner or later, and not needlessly twice.

A message whose loss a patient would notice is recorded before, or with, the
change that calls for it, so no crash can leave the change without it:

- **A booking request** is recorded by the booking itself: the API stores it with
  ``request_due_at`` set and a hand-over ticket, answers 202 and publishes the
  request; its process records, about once a second, how far its requests have
  all reached the broker (``clinic.domain.hand_overs``). A worker's decision
  clears ``request_due_at``. So storing a booking is the request path's one
  write. A move the patient asks for is due the same way, with the booking's
  ``pending_move`` and a ticket of its own.
- **A change no request message will bring back:** a cancellation, a no-show, or
  a booking (or move) given up on after its last retry. Its record
  ``status:<booking>:...`` is written before the booking changes; the change is
  announced and the record marked sent (see ``clinic.domain.announcements``).
- **A worker's own decision** needs no record: the worker announces before it
  acks the request, so until then the request message is the decision's outbox.
  A request that finds its booking decided announces it again only when it is
  redelivered or retried, since the delivery that decided may have died or
  failed before announcing; a copy (the relay's) does not.
- **An email:** the notification worker's record ``email:<booking>:<status>``
  (see ``clinic.domain.emails``).
- **A reminder:** ``reminder:<booking>:<revision>``, recorded with the
  confirmation and due when the reminder is (see ``clinic.domain.reminders``).

Every booking-worker process runs the relay. Each scan reads what is still due
after ``CLINIC_OUTBOX_GRACE``, a batch of each kind in one read, and sends it from
the booking as it is now: a request only while the booking is pending and the
broker never confirmed it (or while its move is pending), a change only while it
is still the booking's latest, a reminder only while it still stands; anything
else is settled (the requests in one write) or dropped. It leases each message
before sending it, so that relays in other processes leave it alone.
Sending twice is harmless: deciding is idempotent, and a status change or a
reminder keeps its message id. The relay reads the time from a clock it is
given, so a test can run it a day ahead.
"""

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime, timedelta

from clinic.clock import utcnow
from clinic.domain.announcements import announcement
from clinic.domain.hand_overs import handed_over_tickets
from clinic.domain.reminders import send_reminder
from clinic.messages import BookingStatus
from clinic.messaging.broker import Publishers
from clinic.redaction import error_summary
from clinic.settings import settings
from clinic.store import bookings, outbox
from clinic.store.database import DatabaseUnavailable
from clinic.store.documents import Booking, MessageKind, OutboxRecord

log = logging.getLogger("clinic.outbox")

RELAY_BATCH = 500
"""Most records one relay scan sends, so a backlog never starves the shutdown."""
UNSENT_SCAN = 1000
"""Most unsent records read to find the oldest, so a scrape stays cheap in an outage."""
RELAYED = [MessageKind.STATUS, MessageKind.REMINDER]
"""The outbox records the relay sends; an email is sent again by its event's redelivery."""
Clock = Callable[[], datetime]
"""What tells the relay the time: ``utcnow``, or a test's clock a day ahead."""


def request_due() -> datetime:
    """When the outbox relay sends a booking's request that nobody confirmed sent by then."""
    return utcnow() + timedelta(seconds=settings.outbox_grace)


async def oldest_unsent_age() -> float:
    """Seconds since the oldest message still to leave the clinic was recorded; 0 if none.

    A booking's request counts until a worker decides it or the relay settles it; a
    reminder from when it falls due (its ``recorded_at``), so a scheduled one is never late.
    """
    recorded = [
        await bookings.oldest_unsettled_request(UNSENT_SCAN),
        await outbox.oldest_unsent_recorded_at(UNSENT_SCAN),
    ]
    oldest = min((moment for moment in recorded if moment is not None), default=None)
    return 0.0 if oldest is None else max((utcnow() - oldest).total_seconds(), 0.0)


def request_name(booking: Booking) -> str | None:
    """Which request of the booking is due: None for its decision, ``move-<revision>`` for
    a move the patient asked for."""
    return None if booking.pending_move is None else f"move-{booking.revision}"


def _awaited(booking: Booking) -> bool:
    """Whether a worker is still to decide the booking's request (or its move's)."""
    return booking.status is BookingStatus.PENDING or booking.pending_move is not None


async def _relay_requests(publishers: Publishers) -> int:
    """Send the overdue requests (up to a batch) that never reached the broker; how many.

    The rest are settled in one write: decided, or waiting in the queue behind
    others, where a worker will have them. A request is sent only while its booking
    is pending (or its move is), and only by the relay that leased it.
    """
    now = utcnow()
    due = await bookings.due_requests(now, RELAY_BATCH)
    reached_broker = await handed_over_tickets(booking.hand_over for booking in due)
    unsent = [b for b in due if _awaited(b) and b.hand_over not in reached_broker]
    sending = {b.id for b in unsent}
    await bookings.settle_requests([b.id for b in due if b.id not in sending], now)
    sent = 0
    for booking in unsent:
        leased_until = await bookings.lease_request(booking.id, now, settings.outbox_grace)
        if leased_until is None:
            continue  # another relay's, or decided since
        await publishers.request_decision(booking.id, request_name(booking))
        log.info("request published by the outbox relay", extra={"booking_id": booking.id})
        await bookings.settle_request(booking.id, leased_until)
        sent += 1
    return sent


async def _send_status(publishers: Publishers, record: OutboxRecord) -> bool:
    """Announce a leased change if it is still the booking's latest; whether it was sent."""
    booking = await bookings.get(record.booking_id)
    if booking is None or (latest := announcement(booking))[0] != record.id:
        # Superseded, or the change never happened (the process died in between).
        await outbox.delete(record.id)
        return False
    await publishers.announce(latest[1])
    await outbox.mark_sent(record.id)
    log.info("status published by the outbox relay", extra={"booking_id": booking.id})
    return True


async def relay_once(publishers: Publishers, clock: Clock = utcnow) -> int:
    """Send the overdue requests, status changes and due reminders (up to a batch of each);
    how many."""
    sent = await _relay_requests(publishers)
    for kind in RELAYED:
        now = clock()
        for due in await outbox.due(kind, now, RELAY_BATCH):
            if (record := await outbox.lease(due, settings.outbox_grace, now)) is None:
                continue  # another relay's, or sent since
            if record.kind is MessageKind.REMINDER:
                sent += await send_reminder(publishers, record, now)
            else:
                sent += await _send_status(publishers, record)
    return sent


async def run_relay(publishers: Publishers, stop: asyncio.Event, clock: Clock = utcnow) -> None:
    """Scan for overdue records every ``CLINIC_OUTBOX_INTERVAL`` seconds until ``stop``.

    A broker or database outage is logged when it starts and when it ends, not on
    every scan.
    """
    failure: Exception | None = None
    while not stop.is_set():
        try:
            sent = await relay_once(publishers, clock)
        except Exception as exc:  # noqa: BLE001 - an outage pauses the relay, never stops it
            if failure is None:
                log.warning(
                    "outbox relay paused, retrying every %gs: %s",
                    settings.outbox_interval,
                    error_summary(exc),
                )
            failure = exc
        else:
            # A scan proves the database is back, but only a send proves the broker is:
            # a record that failed to send is not due again for a grace period.
            if failure is not None and (sent or isinstance(failure, DatabaseUnavailable)):
                log.info("outbox relay resumed")
                failure = None
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.outbox_interval)
