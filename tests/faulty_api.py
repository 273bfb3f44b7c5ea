"""The real API app, with the fault tests' crash points.

Run with ``uvicorn tests.faulty_api:app``.
"""

from clinic.api import app
from clinic.topology import broker
from tests.faults import CrashPoints

broker.add_middleware(CrashPoints)

__all__ = ["app"]
