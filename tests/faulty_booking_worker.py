"""The real booking worker app, with the fault tests' crash points and buggy clinic.

Run with ``faststream run tests.faulty_booking_worker:app``.
"""

from clinic.confirmation import clinic_confirmation
from clinic.handlers.booking import app
from clinic.topology import broker
from tests.faults import BuggyClinic, CrashPoints

broker.add_middleware(CrashPoints)
broker.provider.override(clinic_confirmation, BuggyClinic)

__all__ = ["app"]
