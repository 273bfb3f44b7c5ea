"""What the clinic checks before it takes a booking: the rules a request can never pass,
and the limits that keep one client from booking out every doctor.

The booking worker decides every booking again: these checks answer at once what
it would answer later, and refuse what the clinic will not take at all.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from clinic.clock import utcnow
from clinic.domain.decisions import REASONS, candidates_among, most_telling
from clinic.domain.scheduling import slot_problem
from clinic.messages import RejectionCode
from clinic.settings import settings
from clinic.store import bookings, doctors
from clinic.store.email_keys import email_key

log = logging.getLogger("clinic.api")

NEVER_BOOKABLE = (
    RejectionCode.DATE_IN_PAST,
    RejectionCode.OUTSIDE_WORKING_HOURS,
    RejectionCode.NOT_ON_SLOT_BOUNDARY,
    RejectionCode.DOCTOR_UNAVAILABLE,
)
"""The worker's reasons that the API gives at once, as a 422, for a new booking or a move."""


async def never_bookable(date: datetime, doctor_id: str | None) -> RejectionCode | None:
    """Why no booking at ``date`` (with ``doctor_id``, if given) could ever be confirmed.

    None when some doctor could take it, if the slot is free when the worker looks.
    """
    if date <= utcnow():
        return RejectionCode.DATE_IN_PAST
    # Read at most a second ago: the worker checks again on fresh data.
    candidates = candidates_among(await doctors.recently(), doctor_id)
    if not candidates:
        unknown = doctor_id is not None
        return RejectionCode.DOCTOR_UNAVAILABLE if unknown else RejectionCode.OUTSIDE_WORKING_HOURS
    problems: set[RejectionCode] = set()
    for doctor in candidates:
        if (problem := slot_problem(doctor, date)) is None:
            return None  # the first doctor who could take it settles it
        problems.add(problem)
    return most_telling(problems)


def reason(code: RejectionCode) -> str:
    """What the patient is told for ``code``, as the worker would tell it."""
    return REASONS[code]


@dataclass(frozen=True)
class LimitReached:
    """A limit refused the booking: what to tell the client, and when to try again."""

    message: str
    retry_after: float


def beyond_horizon(date: datetime) -> LimitReached | None:
    """Refuse a date further ahead than the clinic books (``CLINIC_BOOKING_HORIZON_DAYS``)."""
    horizon = timedelta(days=settings.booking_horizon_days)
    opens_at = date - horizon
    wait = (opens_at - utcnow()).total_seconds()
    if wait <= 0:
        return None
    return LimitReached(
        f"Appointments can be booked at most {settings.booking_horizon_days} days ahead.", wait
    )


async def too_many_upcoming(patient_email: str) -> LimitReached | None:
    """Refuse a patient who already holds ``CLINIC_ACTIVE_BOOKINGS_PER_EMAIL`` upcoming bookings.

    Addresses count as one patient when they reach one mailbox (``+tags``, case).
    Two requests arriving together may both pass: the limit is a brake, not a lock.
    """
    limit = settings.active_bookings_per_email
    if limit == 0:
        return None
    upcoming = await bookings.upcoming_dates(email_key(patient_email), limit)
    if len(upcoming) < limit:
        return None
    wait = (upcoming[0] - utcnow()).total_seconds()
    return LimitReached(
        f"This email address already has {limit} upcoming appointments; "
        "cancel one, or book again after the next one.",
        max(wait, 1.0),
    )


WaitingCount = Callable[[], Awaitable[int]]
"""How many booking requests wait in the queue for a worker, as the broker counts them."""


class PendingBacklog:
    """Whether bookings wait for a decision faster than the workers take them.

    Counted at most once per ``refresh`` seconds, by one caller while the others
    use the last count. The broker counts the requests waiting in the queue, at no
    cost to the database; if it cannot, the database counts the pending bookings,
    never past the threshold.
    """

    def __init__(self, waiting: WaitingCount | None = None, refresh: float = 1.0) -> None:
        self._waiting = waiting
        self.refresh = refresh
        self._counted_at = float("-inf")
        self._pending = 0
        self._counting: asyncio.Lock | None = None

    async def too_long(self) -> bool:
        """True when more than ``CLINIC_MAX_PENDING`` bookings wait for a decision."""
        return await self.count() > settings.max_pending

    async def count(self) -> int:
        """How many bookings wait for a decision, up to ``CLINIC_MAX_PENDING + 1``."""
        if time.monotonic() - self._counted_at >= self.refresh:
            self._counting = self._counting or asyncio.Lock()
            if not self._counting.locked():
                async with self._counting:
                    self._pending = await self._count()
                    self._counted_at = time.monotonic()
        return self._pending

    async def _count(self) -> int:
        if self._waiting is not None:
            try:
                return await self._waiting()
            except Exception as exc:  # noqa: BLE001 - the database can count instead
                log.debug("the broker did not count the waiting requests: %s", exc)
        return await bookings.count_pending(settings.max_pending + 1)

    def accepted(self) -> None:
        """Count a booking just taken, until the next count sees it."""
        self._pending += 1
