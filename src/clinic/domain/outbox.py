"""The outbox: whatever must leave the clinic does, sooner or later, and not needlessly twice.

A message whose loss a patient would notice is recorded in ``outbox`` before the
change that calls for it, so no crash can leave the change without it:

- **A booking request.** The API records ``request:<booking>`` and then stores the
  booking, answers 202, publishes the request and marks the record sent.
- **A status change no request message will bring back:** a cancellation, or a
  booking given up on after its last retry. The record
  ``status:<booking>:<status>`` is written before the booking changes; the change
  is announced and the record marked sent.
- **An email:** the notification worker's record ``email:<booking>:<status>``
  (see ``clinic.domain.emails``).

A worker's own decision needs no record before it is announced: the worker
announces before it acks the request, so until then the request message is the
decision's outbox. It records the announcement once sent, so a redelivered
request does not announce the decision again.

Every booking-worker process runs the relay. It leases each request or status
record still unsent after ``CLINIC_OUTBOX_GRACE`` and sends it from the booking
as it is now: a request only while the booking is pending, a status change only
while the booking still has that status; anything else is settled or dropped.
Sending twice is harmless: deciding is idempotent, and a status change keeps its
message id.
"""

import asyncio
import logging
from contextlib import suppress

from clinic.messages import BookingStatus, BookingStatusChanged
from clinic.messaging.broker import Publishers
from clinic.settings import settings
from clinic.store import bookings, outbox
from clinic.store.database import DatabaseUnavailable
from clinic.store.documents import Booking, MessageKind, OutboxRecord

log = logging.getLogger("clinic.outbox")

RELAY_BATCH = 500
"""Most records one relay scan sends, so a backlog never starves the shutdown."""
RELAYED = [MessageKind.REQUEST, MessageKind.STATUS]
"""What the relay sends; an email is sent again by its event's redelivery."""


async def record_request(booking_id: str) -> None:
    """Record that the booking's request must reach the booking workers."""
    await outbox.add(
        outbox.new_record(MessageKind.REQUEST, booking_id, None, settings.outbox_grace)
    )


async def record_status(booking_id: str, status: BookingStatus) -> bool:
    """Record that this status change must be announced; False if it was recorded before."""
    return await outbox.add(
        outbox.new_record(MessageKind.STATUS, booking_id, status, settings.outbox_grace)
    )


async def hand_over(publishers: Publishers, booking_id: str) -> None:
    """Publish a just-stored booking's request and mark it sent; if that fails, the relay will."""
    try:
        await publishers.request_decision(booking_id)
        # Lost if this fails or the process dies now: the relay finds the booking
        # decided, or publishes the request once more, which is harmless.
        await outbox.mark_sent(outbox.record_id(MessageKind.REQUEST, booking_id))
    except Exception as exc:  # noqa: BLE001 - whatever failed, the relay retries it
        log.warning(
            "request not published yet, the outbox relay will: %r",
            exc,
            extra={"booking_id": booking_id},
        )


def status_event(booking: Booking) -> BookingStatusChanged:
    """The event announcing the booking's current status."""
    return BookingStatusChanged(
        booking_id=booking.id,
        status=booking.status,
        patient_name=booking.patient_name,
        patient_email=booking.patient_email,
        date=booking.date,
        doctor_id=booking.doctor_id,
        doctor_name=booking.doctor_name,
        reason=booking.reason,
        reason_code=booking.reason_code,
        occurred_at=booking.updated_at,
    )


async def announce(publishers: Publishers, booking: Booking) -> None:
    """Announce the booking's current status on the fanout exchange."""
    await publishers.announce(status_event(booking))


async def announce_once(publishers: Publishers, booking: Booking) -> None:
    """Announce the booking's current status unless its record says it was; record it sent."""
    record_id = outbox.record_id(MessageKind.STATUS, booking.id, booking.status)
    existing = await outbox.get(record_id)
    if existing is not None and existing.sent_at is not None:
        return
    await announce(publishers, booking)
    sent = outbox.new_record(MessageKind.STATUS, booking.id, booking.status, None)
    if existing is not None or not await outbox.add(sent):
        await outbox.mark_sent(record_id)


async def announce_recorded(publishers: Publishers, booking: Booking) -> None:
    """Announce a recorded status change and mark it sent; on failure leave it to the relay."""
    try:
        await announce(publishers, booking)
        await outbox.mark_sent(outbox.record_id(MessageKind.STATUS, booking.id, booking.status))
    except Exception as exc:  # noqa: BLE001 - the outbox relay announces it later
        log.warning(
            "%s not announced yet, the outbox relay will: %r",
            booking.status.value,
            exc,
            extra={"booking_id": booking.id},
        )


async def _send_again(publishers: Publishers, record: OutboxRecord) -> bool:
    """Send a leased record's message from the booking as it is now; whether it was sent."""
    booking = await bookings.get(record.booking_id)
    if booking is None:
        # The API records a request before it stores the booking: a record without
        # one, seen twice a grace period apart, is of a request never accepted.
        if record.attempts > 2:
            await outbox.drop(record.id)
        return False
    if record.kind is MessageKind.REQUEST:
        if booking.status is not BookingStatus.PENDING:  # a worker had it: it was published
            await outbox.mark_sent(record.id)
            return False
        await publishers.request_decision(booking.id)
    elif booking.status is not record.status:  # superseded, or the change never happened
        await outbox.drop(record.id)
        return False
    else:
        await announce(publishers, booking)
    await outbox.mark_sent(record.id)
    log.info(
        "%s published by the outbox relay", record.kind.value, extra={"booking_id": booking.id}
    )
    return True


async def relay_once(publishers: Publishers) -> int:
    """Send the overdue records' messages (up to a batch); how many were sent."""
    sent = 0
    for _ in range(RELAY_BATCH):
        record = await outbox.lease_due(RELAYED, settings.outbox_grace)
        if record is None:
            break
        sent += await _send_again(publishers, record)
    return sent


async def run_relay(publishers: Publishers, stop: asyncio.Event) -> None:
    """Scan for overdue records every ``CLINIC_OUTBOX_INTERVAL`` seconds until ``stop``.

    A broker or database outage is logged when it starts and when it ends, not on
    every scan.
    """
    failure: Exception | None = None
    while not stop.is_set():
        try:
            sent = await relay_once(publishers)
        except Exception as exc:  # noqa: BLE001 - an outage pauses the relay, never stops it
            if failure is None:
                log.warning(
                    "outbox relay paused, retrying every %gs: %r", settings.outbox_interval, exc
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
