"""Bounds on what one request may make the API read: its request line, headers and body.

Applied by the API's outermost layer (``clinic.api.edge``), so it answers before
any route, logger or validator sees an oversized request: a request line over
``MAX_TARGET_BYTES`` is a 414, headers over ``MAX_HEADER_BYTES`` a 431, a body
over ``MAX_BODY_BYTES`` a 413, and a body that is still arriving after
``CLINIC_BODY_TIMEOUT`` seconds a 408.
The HTTP server reads the request line and headers before the app does, so
the proxy in front caps those too (README, "Security and privacy").
"""

import asyncio
import json

from starlette.exceptions import HTTPException
from starlette.types import Message, Receive, Scope, Send

from clinic.settings import settings

MAX_TARGET_BYTES = 8 * 1024
MAX_HEADER_BYTES = 8 * 1024
MAX_BODY_BYTES = 16 * 1024


_DETAILS = {
    408: "The request body did not arrive in time.",
    413: f"The request body is larger than {MAX_BODY_BYTES // 1024} KiB.",
    414: f"The request line is longer than {MAX_TARGET_BYTES // 1024} KiB.",
    431: f"The request headers are larger than {MAX_HEADER_BYTES // 1024} KiB.",
}


class _Refused(HTTPException):
    """The request broke a bound while the app was reading its body.

    An HTTPException, so the route's body parsing passes it on as it is
    (FastAPI turns any other error there into a 400).
    """

    def __init__(self, status: int) -> None:
        super().__init__(status, _DETAILS[status])


def bounded(receive: Receive) -> Receive:
    """``receive``, raising a 413 once the body passes ``MAX_BODY_BYTES`` and a 408 if it
    is still arriving ``CLINIC_BODY_TIMEOUT`` seconds from now."""
    received = 0
    body_done = False
    deadline = asyncio.get_running_loop().time() + settings.body_timeout

    async def bounded_receive() -> Message:
        nonlocal received, body_done
        if body_done:
            return await receive()  # after the body: a disconnect, whenever it comes
        try:
            async with asyncio.timeout_at(deadline):
                message = await receive()
        except TimeoutError:
            raise _Refused(408) from None
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES:
                raise _Refused(413)
            body_done = not message.get("more_body", False)
        return message

    return bounded_receive


def refusal(scope: Scope) -> int | None:
    """The status refusing this request for its line, headers or declared body; else None."""
    target = len(scope.get("raw_path") or scope["path"]) + len(scope.get("query_string", b""))
    if target > MAX_TARGET_BYTES:
        return 414
    headers = scope["headers"]
    if sum(len(name) + len(value) + 4 for name, value in headers) > MAX_HEADER_BYTES:
        return 431
    declared = dict(headers).get(b"content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        return 413
    return None


async def refuse(send: Send, status: int) -> None:
    """Answer ``status``, with its JSON error, and close the connection."""
    body = json.dumps({"detail": _DETAILS[status]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
