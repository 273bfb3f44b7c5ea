"""The real API app, with the fault tests' crash points and lost answers.

Run with ``uvicorn tests.faulty_api:app``.
"""

from clinic.api import app
from tests.faults import CrashPoints, LoseAnswers

app.state.broker.add_middleware(CrashPoints)
app.add_middleware(LoseAnswers)

__all__ = ["app"]
