"""How long the clinic keeps a patient's name and email: ``CLINIC_RETENTION_DAYS`` after
the appointment. After that the booking stays, for the clinic's records and its
statistics, but names no one.
"""

import asyncio
import logging
from contextlib import suppress
from datetime import datetime, timedelta

from clinic.clock import utcnow
from clinic.redaction import error_summary
from clinic.settings import settings
from clinic.store import patients

log = logging.getLogger("clinic.retention")

INTERVAL = 3600.0
"""Seconds between two passes: retention is counted in days."""


async def anonymise_due(since: datetime | None = None) -> tuple[int, datetime]:
    """Remove the patient data of every booking past retention; how many, and the cutoff used.

    Pass the cutoff of the previous pass as ``since`` to read only the bookings
    that became due since.
    """
    cutoff = utcnow() - timedelta(days=settings.retention_days)
    removed = 0
    while changed := await patients.anonymise_appointments_between(since, cutoff):
        removed += changed
    if removed:
        log.info("removed the patient data of %d bookings past retention", removed)
    return removed, cutoff


async def run_retention(stop: asyncio.Event, interval: float = INTERVAL) -> None:
    """Apply retention every ``interval`` seconds until ``stop``; a failed pass is retried."""
    since: datetime | None = None
    while not stop.is_set():
        try:
            _, since = await anonymise_due(since)
        except Exception as exc:  # noqa: BLE001 - an outage delays retention, never stops it
            log.warning("retention pass failed, retrying later: %s", error_summary(exc))
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
