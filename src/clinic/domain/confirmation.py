"""The clinic's confirmation step, which the booking worker waits for.

The original system simulated it with a 2–5 s delay; so do we. It is an injected
dependency so that a real clinic system (or a test's failing one) can take its place.
"""

import asyncio
import random
from typing import Protocol, runtime_checkable

from clinic.settings import settings
from clinic.store.documents import Booking


@runtime_checkable
class ClinicConfirmation(Protocol):
    """Asks the clinic about a booking; raises if the clinic could not be asked."""

    async def review(self, booking: Booking) -> None:
        """Return once the clinic has looked at ``booking``."""


class SimulatedConfirmation:
    """Takes between ``CLINIC_CONFIRM_DELAY_MIN`` and ``_MAX`` seconds, like a busy front desk."""

    async def review(self, booking: Booking) -> None:
        await asyncio.sleep(random.uniform(settings.confirm_delay_min, settings.confirm_delay_max))


async def clinic_confirmation() -> ClinicConfirmation:
    """The confirmation step the booking worker uses unless overridden."""
    # async: a plain function would be run in a thread for every message.
    return SimulatedConfirmation()
