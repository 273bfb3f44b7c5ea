"""What a client sees when something fails inside the API: a JSON error, never a traceback.

A database that does not answer is a 503 the client may retry. Anything else
is a bug: a 500 with an error id, logged once under that id, so a patient's
report of it can be matched with the log line. Neither carries patient data.
"""

import logging
from uuid import uuid4

from fastapi import Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from clinic.redaction import error_summary

log = logging.getLogger("clinic.api")

RETRY_AFTER_SECONDS = 5
"""What a 503 for an unavailable database asks the client to wait before retrying."""


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """A database outage is a 503 with a JSON error and ``Retry-After``."""
    log.error(
        "database unavailable on %s %s: %s",
        request.method,
        _route(request.scope),
        error_summary(exc),
    )
    return JSONResponse(
        {"detail": "The booking database is unavailable; please try again shortly."},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


# FastAPI's answer to a body it could not decode at all (not UTF-8, say).
_UNPARSABLE_BODY = "There was an error parsing the body"


async def http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's answer to an HTTP error, except that an undecodable body is a 422 too.

    A 405 lists in ``Allow`` every method of the path, not only those of the one
    route that happened to match it first.
    """
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == status.HTTP_400_BAD_REQUEST and exc.detail == _UNPARSABLE_BODY:
        problem = {"type": "json_invalid", "loc": ["body"], "msg": "The body is not UTF-8 JSON."}
        return JSONResponse({"detail": [problem]}, status.HTTP_422_UNPROCESSABLE_CONTENT)
    if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        allowed = ", ".join(_methods_at(request))
        exc = StarletteHTTPException(exc.status_code, exc.detail, {"Allow": allowed})
    return await http_exception_handler(request, exc)


def _methods_at(request: Request) -> list[str]:
    """Every method some route answers at the request's path."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """A 422 naming each field and what is wrong with it, without quoting what was sent."""
    assert isinstance(exc, RequestValidationError)
    problems = [_without_input(error) for error in exc.errors()]
    return JSONResponse(
        {"detail": jsonable_encoder(problems)}, status.HTTP_422_UNPROCESSABLE_CONTENT
    )


def _without_input(error: dict[str, object]) -> dict[str, object]:
    # A validator's own exception in "ctx" says nothing "msg" does not.
    context = error.get("ctx")
    drop = {"input", "url"} | (
        {"ctx"} if isinstance(context, dict) and "error" in context else set()
    )
    return {key: value for key, value in error.items() if key not in drop}


async def answer_unexpected(
    exc: Exception, scope: Scope, receive: Receive, send: Send, *, answer_started: bool
) -> None:
    """Log an error nothing else handled once, under a new error id, and answer it with a
    500 carrying that id, unless the answer had started (nothing more can be said then)."""
    error_id = uuid4().hex
    log.error(
        "unexpected error %s on %s %s", error_id, scope["method"], _route(scope), exc_info=exc
    )
    if answer_started:
        return
    response = JSONResponse(
        {
            "detail": f"Something went wrong on our side (error id {error_id}).",
            "errorId": error_id,
        },
        status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )
    await response(scope, receive, send)


def _route(scope: Scope) -> str:
    """The route's template (``/booking/{booking_id}``), or the path when no route matched."""
    route = scope.get("route")
    path: str = getattr(route, "path", None) or scope["path"]
    return path
