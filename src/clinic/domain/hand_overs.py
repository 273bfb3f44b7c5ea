"""Which booking requests an API process handed to the broker, in one small record per process.

Storing a booking is the only write on ``POST /book``'s path. The booking keeps
its request's due time (see ``clinic.domain.outbox``) and a ticket,
``<process>:<number>``, numbered in the order this process took them. Once the
broker has confirmed every request up to a number, the process records just that
number, its *mark*, at most every ``MARK_INTERVAL``: one write a second or so,
however many bookings it takes. The outbox relay publishes an overdue request
only if its ticket is past its process's mark; so a request waiting in the queue
behind others is not published twice, and a lost one is always published again.

A request whose hand-over failed holds the mark back until its booking no longer
names the ticket (the process clears it, or the relay sends the request). A
process that dies leaves its mark where it was: the relay sends again whatever
of its requests came after it and is still waiting, which is harmless, as
deciding is idempotent.
"""

import asyncio
import logging
from collections.abc import Iterable
from contextlib import suppress
from uuid import uuid4

from clinic.messaging.broker import Publishers
from clinic.redaction import error_summary
from clinic.store import bookings, hand_over_marks

log = logging.getLogger("clinic.outbox")

MARK_INTERVAL = 0.5
"""Seconds between two writes of a process's mark, while it moves."""


def ticket_of(ticket: str) -> tuple[str, int]:
    """The process and number a ticket names."""
    process, _, number = ticket.rpartition(":")
    return process, int(number)


class HandOvers:
    """One API process's hand-overs of booking requests to the broker, and its mark."""

    def __init__(self, publishers: Publishers) -> None:
        self.publishers = publishers
        self.process = uuid4().hex[:12]
        self._issued = 0
        self._waiting: set[int] = set()
        # Failed hand-overs, by number: the booking whose ticket is still to be cleared.
        self._failed: dict[int, str] = {}
        self._recorded = 0
        self._publishing: set[asyncio.Task[None]] = set()

    def ticket(self) -> str:
        """A new ticket, for a booking (or move) about to be stored with its request due."""
        self._issued += 1
        self._waiting.add(self._issued)
        return f"{self.process}:{self._issued}"

    def not_stored(self, ticket: str) -> None:
        """Nothing was stored with the ticket (the id was taken, the move refused)."""
        self._waiting.discard(ticket_of(ticket)[1])

    def failed(self, ticket: str, booking_id: str) -> None:
        """The booking may be stored with the ticket, but its request did not reach the broker."""
        number = ticket_of(ticket)[1]
        self._waiting.discard(number)
        self._failed[number] = booking_id

    def start(self, ticket: str, booking_id: str, what: str | None = None) -> None:
        """Hand a just-stored request over while the answer goes out; ``finish`` waits for it.

        A task of its own, not the request's background task: every wait of a publish
        resumes through the frames beneath it, and beneath a request there are some
        thirty (middlewares, routing) where here there are a dozen. The task copies
        the request's context, so its log lines and spans still name the booking.
        """
        task = asyncio.create_task(self.hand_over(ticket, booking_id, what))
        self._publishing.add(task)  # held here: the event loop keeps only a weak reference
        task.add_done_callback(self._publishing.discard)

    async def finish(self) -> None:
        """Wait until every hand-over started so far has ended (each within its timeout)."""
        while self._publishing:
            await asyncio.gather(*self._publishing, return_exceptions=True)

    async def hand_over(self, ticket: str, booking_id: str, what: str | None = None) -> None:
        """Publish a just-stored booking's request (or its move's, named ``what``); if that
        fails, the relay will, once the request is due."""
        try:
            await self.publishers.request_decision(booking_id, what)
        except Exception as exc:  # noqa: BLE001 - whatever failed, the relay retries it
            self.failed(ticket, booking_id)
            log.warning(
                "request not published yet, the outbox relay will: %s",
                error_summary(exc),
                extra={"booking_id": booking_id},
            )
        except BaseException:  # cancelled (shutting down): maybe published, maybe not
            self.failed(ticket, booking_id)
            raise
        else:
            self._waiting.discard(ticket_of(ticket)[1])

    def mark(self) -> int:
        """The highest number up to which every request reached the broker."""
        outstanding = self._waiting | self._failed.keys()
        return min(outstanding) - 1 if outstanding else self._issued

    async def record_mark(self) -> None:
        """Clear the tickets of failed hand-overs, then record the mark if it moved."""
        for number, booking_id in list(self._failed.items()):
            await bookings.clear_hand_over(booking_id, f"{self.process}:{number}")
            del self._failed[number]
        if (mark := self.mark()) > self._recorded:
            await hand_over_marks.record(self.process, mark)
            self._recorded = mark

    async def run(self, stop: asyncio.Event) -> None:
        """Record the mark every ``MARK_INTERVAL`` until ``stop``, and once more after it."""
        failing = False
        while True:
            try:
                await self.record_mark()
            except Exception as exc:  # noqa: BLE001 - an outage holds the mark back, no more
                if not failing:
                    log.warning("hand-over mark not recorded yet: %s", error_summary(exc))
                failing = True
            else:
                failing = False
            if stop.is_set():
                return
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), MARK_INTERVAL)


async def handed_over(ticket: str | None) -> bool:
    """Whether the broker confirmed the request stored with ``ticket``."""
    return ticket is not None and ticket in await handed_over_tickets([ticket])


async def handed_over_tickets(tickets: Iterable[str | None]) -> set[str]:
    """Which of ``tickets`` the broker confirmed, in one read of their processes' marks."""
    numbered = [(ticket, *ticket_of(ticket)) for ticket in tickets if ticket is not None]
    marks = await hand_over_marks.get_many({process for _, process, _ in numbered})
    return {
        ticket
        for ticket, process, number in numbered
        if process in marks and number <= marks[process]
    }
