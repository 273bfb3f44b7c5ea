"""Error answers shared by the routes, documented in the OpenAPI document."""

from typing import Any

from fastapi import HTTPException, status

from clinic.api.schemas import ErrorOut

NOT_FOUND = "No booking with this id."
NOT_OPENED = "No booking with this id opens with this token."
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorOut, "description": "The booking database is unavailable."}
}
TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorOut, "description": "The body is larger than 16 KiB."}
}
STAFF: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "No staff token was sent."},
    403: {"model": ErrorOut, "description": "The staff token is not valid."},
}


def invalid(location: list[str], message: str) -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors, for checks that need the database."""
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        [{"loc": location, "msg": message, "type": "value_error"}],
    )
