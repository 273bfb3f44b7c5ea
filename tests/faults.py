"""What the fault tests add to the real worker apps: a mail server to count, crash points.

The end-to-end fault tests run the clinic's own apps in real processes,
wrapped by ``tests.faulty_api``, ``tests.faulty_booking_worker`` and
``tests.faulty_notification_worker``. Those add only:

- ``MailboxFile``, the fake of the one thing that leaves the system: every
  email "sent" is a JSON line in ``FAULT_MAILBOX``, so a test counts emails
  across processes and crashes;
- crash points, named by ``FAULT_CRASH_POINT``: when one is reached (for the
  ``FAULT_CRASH_AFTER``-th time) the process writes the booking id to
  ``FAULT_MARKERS`` and hangs there, handling nothing more, so the test can
  SIGKILL it at exactly that moment. The points: ``before_request_publish``
  (API: stored, not yet published), ``before_status_publish`` (booking worker:
  decision stored, not yet announced), ``after_reminder_publish`` (the relay
  announced a reminder, not yet marked it sent), ``mid_send`` (email claimed,
  not sent) and ``after_handling`` (handled, not yet acknowledged);
- ``FAULT_SLOW_REQUESTS``: seconds the API waits before each booking request's publish,
  as if the broker were slow to take it;
- ``FAULT_CLOCK_AHEAD``: seconds the booking worker's outbox relay runs ahead of
  the real time, so a reminder a day away falls due now;
- ``BuggyClinic``: a handler bug that always raises, for one patient name;
- ``LoseAnswers``: every ``FAULT_LOSE_EVERY``-th answer to ``POST /book`` reaches the
  client as a 503 although the booking was stored, as when a proxy times out.
"""

import asyncio
import itertools
import json
import os
from datetime import datetime, timedelta
from typing import Any, NoReturn

from faststream import BaseMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clinic.clock import utcnow
from clinic.domain.confirmation import SimulatedConfirmation
from clinic.mail import Email
from clinic.messaging.topology import BOOKING_REQUESTS, NOTIFICATIONS
from clinic.store.documents import Booking

CRASH_POINT = os.environ.get("FAULT_CRASH_POINT", "")
MAILBOX = os.environ.get("FAULT_MAILBOX", "mailbox.jsonl")
MARKERS = os.environ.get("FAULT_MARKERS", "markers.txt")
CRASH_AFTER = int(os.environ.get("FAULT_CRASH_AFTER", "1"))
"""Crash at the point the n-th time it is reached (the first time by default)."""
CLOCK_AHEAD = timedelta(seconds=float(os.environ.get("FAULT_CLOCK_AHEAD", "0")))
LOSE_EVERY = int(os.environ.get("FAULT_LOSE_EVERY", "0"))
SLOW_REQUESTS = float(os.environ.get("FAULT_SLOW_REQUESTS", "0"))
BUGGY_NAME = "Bug Trigger"
"""A booking for a patient of this name makes the faulty booking worker's handler raise."""

_crashed = asyncio.Event()
_turns = itertools.count(1)


async def reach(point: str, booking_id: str) -> None:
    """Pass ``point``; hang there if it is the crash point and its turn has come."""
    if point == CRASH_POINT and next(_turns) >= CRASH_AFTER:
        await hang_at(point, booking_id)


async def hang_at(point: str, booking_id: str) -> NoReturn:
    """Tell the test this crash point was reached, then never return."""
    _crashed.set()
    with open(MARKERS, "a") as markers:  # noqa: ASYNC230 - one short line
        markers.write(f"{point} {booking_id}\n")
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


class MailboxFile:
    """The fake mail server: one JSON line per email, appended in a single write."""

    async def send(self, email: Email) -> None:
        await reach("mid_send", email.booking_id)
        line = json.dumps({"to": email.to, "subject": email.subject, "bookingId": email.booking_id})
        with open(MAILBOX, "a") as mailbox:  # noqa: ASYNC230 - one short line
            mailbox.write(line + "\n")


def clock_ahead() -> datetime:
    """The outbox relay's clock in the faulty booking worker: ``FAULT_CLOCK_AHEAD`` ahead."""
    return utcnow() + CLOCK_AHEAD


class BuggyClinic(SimulatedConfirmation):
    """The clinic's confirmation with a bug: it always raises for one patient's bookings."""

    async def review(self, booking: Booking) -> None:
        if booking.patient_name == BUGGY_NAME:
            raise RuntimeError("bug: the confirmation step cannot handle this booking")
        await super().review(booking)


class CrashPoints(BaseMiddleware):
    """Broker middleware that hangs at ``FAULT_CRASH_POINT`` (and stops all handling after)."""

    async def consume_scope(self, call_next: Any, msg: Any) -> Any:
        if _crashed.is_set():
            await asyncio.Event().wait()  # the process is "dead": touch nothing more
        result = await call_next(msg)
        await reach("after_handling", str(msg.correlation_id))
        return result

    async def publish_scope(self, call_next: Any, cmd: Any) -> Any:
        if cmd.exchange.name == NOTIFICATIONS.name:
            await reach("before_status_publish", str(cmd.correlation_id))
        elif cmd.destination == BOOKING_REQUESTS.name:
            await reach("before_request_publish", str(cmd.correlation_id))
            if SLOW_REQUESTS:
                await asyncio.sleep(SLOW_REQUESTS)
        result = await call_next(cmd)
        if ":reminder-" in str(cmd.message_options.get("message_id", "")):
            await reach("after_reminder_publish", str(cmd.correlation_id))
        return result


class LoseAnswers:
    """ASGI middleware: every ``FAULT_LOSE_EVERY``-th ``POST /book`` is answered 503 after
    the API handled it, so the client cannot tell whether it was booked."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.answers = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not LOSE_EVERY or scope["type"] != "http" or scope["path"] != "/book":
            await self.app(scope, receive, send)
            return
        lose = next(self.answers) % LOSE_EVERY == 0

        async def answer(message: Message) -> None:
            if lose and message["type"] == "http.response.start":
                message = {**message, "status": 503}
            await send(message)

        await self.app(scope, receive, answer)
