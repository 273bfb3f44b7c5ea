"""The real booking worker app, with the fault tests' crash points and buggy clinic.

Run with ``faststream run tests.faulty_booking_worker:app``.
"""

from clinic.domain.confirmation import clinic_confirmation
from clinic.handlers.booking import app
from tests.faults import BuggyClinic, CrashPoints, clock_ahead

assert app.broker is not None
app.broker.add_middleware(CrashPoints)
app.broker.provider.override(clinic_confirmation, BuggyClinic)
app.broker.context.set_global("clock", clock_ahead)

__all__ = ["app"]
