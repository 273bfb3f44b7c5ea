"""``Annotated`` dependency aliases for the API's routes."""

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from faststream.rabbit import RabbitBroker
from pymongo import AsyncMongoClient

from clinic.api.rate_limits import BookingRate
from clinic.domain.admission import PendingBacklog
from clinic.domain.hand_overs import HandOvers
from clinic.messaging.broker import Publishers
from clinic.settings import settings


def _app_state(name: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency giving ``app.state.<name>``, which ``create_app`` or its lifespan set."""

    # Async: FastAPI runs a plain function in a thread on every request.
    async def provide(request: Request) -> Any:
        return getattr(request.app.state, name)

    return provide


MongoClient = Annotated[AsyncMongoClient[dict[str, object]], Depends(_app_state("mongo"))]
"""The API's database client."""
Broker = Annotated[RabbitBroker, Depends(_app_state("broker"))]
"""The API's broker."""
Publish = Annotated[Publishers, Depends(_app_state("publishers"))]
"""The publishers of the API's broker."""
HandOver = Annotated[HandOvers, Depends(_app_state("hand_overs"))]
"""What hands this process's booking requests to the broker (and keeps its mark)."""
Backlog = Annotated[PendingBacklog, Depends(_app_state("backlog"))]
"""This process's view of how many bookings wait for a decision."""


@dataclass(frozen=True)
class Staff:
    """A staff member, known by the name of their token (never by the token)."""

    name: str


_staff_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="staffToken",
    description="A staff token, as `name:token` in CLINIC_STAFF_TOKENS: send the token part.",
)
_manage_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="manageToken",
    description="The booking's manage token, as POST /book answered it, or a staff token.",
)


def _staff_named(token: str) -> Staff | None:
    given = token.encode()
    # Compared with every token, in constant time, so timing tells nothing.
    found = None
    for known, name in settings.staff_token_names.items():
        if hmac.compare_digest(given, known.encode()):
            found = Staff(name)
    return found


async def _staff(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_staff_bearer)],
) -> Staff:
    """The staff member presenting their token; 401 without one, 403 with a wrong one."""
    if credentials is None:  # none, or not a Bearer one: HTTPBearer tells them apart
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Staff only: send Authorization: Bearer <staff token>.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    staff = _staff_named(credentials.credentials)
    if staff is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "This staff token is not valid.")
    return staff


async def _staff_if_any(credentials: HTTPAuthorizationCredentials | None) -> Staff | None:
    """The staff member, if a token was sent (403 if it is wrong); None for a patient."""
    return None if credentials is None else await _staff(credentials)


@dataclass(frozen=True)
class Intake:
    """What this API process keeps to take new bookings."""

    hand_overs: HandOvers
    """Hands their requests to the broker (and keeps the process's mark)."""
    rate: BookingRate
    """Counts booking requests per client address."""
    backlog: PendingBacklog
    """Tells how many bookings wait for a decision."""
    staff: Staff | None
    """A staff member booking for a patient (no per-client limits apply), or None."""


# One dependency for all four, the staff token's check included: FastAPI's cost per
# dependency is a measurable share of POST /book (docs/performance.md).
async def _intake(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_staff_bearer)],
) -> Intake:
    state = request.app.state
    staff = await _staff_if_any(credentials)
    return Intake(state.hand_overs, state.booking_rate, state.backlog, staff)


IntakeState = Annotated[Intake, Depends(_intake)]
"""This process's hand-overs, per-client rate and view of the backlog, and the staff
member booking if a staff token came (403 if it is not one), for ``POST /book``."""


TOKEN_OPTIONAL: dict[str, Any] = {"security": [{}]}
"""``openapi_extra`` of a route whose token is optional (``IntakeState``, ``BookingKey``).

FastAPI documents any token a route reads as required; this adds the empty
requirement, which is how OpenAPI says that a call without a token is fine too.
"""
StaffMember = Annotated[Staff, Depends(_staff)]
"""The staff member calling; the route answers 401 or 403 to anyone else."""
StaffOnly = Depends(_staff)
"""Route dependency: the caller must present a staff token."""


async def _booking_key(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_manage_bearer)],
) -> Staff | str | None:
    if credentials is None:
        return None
    return _staff_named(credentials.credentials) or credentials.credentials


BookingKey = Annotated[Staff | str | None, Depends(_booking_key)]
"""What opens a booking: a staff member, a manage token to check, or nothing."""
