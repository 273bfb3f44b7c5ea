"""Error answers shared by the routes, documented in the OpenAPI document."""

import math
from datetime import datetime
from typing import Any

from fastapi import HTTPException, status

from clinic.api.fields import RULES
from clinic.api.schemas import ErrorOut, ProblemsOut
from clinic.domain.admission import beyond_horizon, never_bookable, reason
from clinic.messages import RejectionCode

NOT_FOUND = "No booking with this id."
NOT_OPENED = "No booking with this id opens with this token."
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorOut, "description": "The booking database is unavailable."}
}
BUSY: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ErrorOut,
        "description": (
            "The booking database is unavailable, or too many bookings wait for a "
            "decision (CLINIC_MAX_PENDING): try again after `Retry-After` seconds."
        ),
    }
}
TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorOut, "description": "The body is larger than 16 KiB."}
}
STAFF: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "No staff token was sent."},
    403: {"model": ErrorOut, "description": "The staff token is not valid."},
}


LIMITED: dict[int | str, dict[str, Any]] = {
    429: {
        "model": ErrorOut,
        "description": (
            "A limit of the clinic's was reached (bookings per client address per minute "
            "or per day, upcoming bookings per email address, or how far ahead one may "
            "book): `Retry-After` says in how many seconds to try again."
        ),
    }
}


def refusals(*rules: str | RejectionCode) -> dict[int | str, dict[str, Any]]:
    """The 422 answer of a route, naming the rules its schema cannot say by their codes.

    A refusal for one of them carries its code as the problem's ``type``: a client
    may tell it from a request that breaks the schema.
    """
    named = []
    for rule in rules:
        text = reason(rule).rstrip(".") if isinstance(rule, RejectionCode) else RULES[rule]
        named.append(f"`{rule}` ({text[0].lower()}{text[1:]})")
    return {
        422: {
            "model": ProblemsOut,
            "description": (
                "The request breaks its schema, or a rule the schema cannot say, named by "
                "the problem's type: " + ", ".join(named) + "."
            ),
        }
    }


def invalid(location: list[str], message: str, kind: str = "value_error") -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors, for checks that need the database."""
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        [{"loc": location, "msg": message, "type": kind}],
    )


def limited(message: str, retry_after: float) -> HTTPException:
    """A 429 saying which limit was reached, and after how many seconds to try again."""
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        message,
        headers={"Retry-After": str(max(1, math.ceil(retry_after)))},
    )


async def refuse_unbookable(date: datetime, doctor_id: str | None) -> None:
    """Refuse at once an appointment time no booking worker could ever give: beyond the
    horizon (429), or never bookable (422, with the worker's reason code as its type)."""
    if beyond := beyond_horizon(date):
        raise limited(beyond.message, beyond.retry_after)
    if code := await never_bookable(date, doctor_id):
        field = "doctorId" if code is RejectionCode.DOCTOR_UNAVAILABLE else "date"
        raise invalid(["body", field], reason(code), code.value)


def busy(retry_after: float) -> HTTPException:
    """A 503: too many bookings wait for a decision to take another now."""
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "The clinic is taking many bookings right now; please try again shortly.",
        headers={"Retry-After": str(max(1, math.ceil(retry_after)))},
    )
