"""HTTP metrics of the API: every answer counted by route template, method and status.

A pure ASGI middleware, outside the clinic's error handling, so a 500 it wrote
is counted as a 500. The route is the template the router matched
(``/booking/{booking_id}``), never the path asked for, so no booking id reaches a
label; a request no route took is ``unmatched``.
"""

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clinic.metrics import UNMATCHED_ROUTE, observe_request


class HttpMetrics:
    """ASGI middleware recording each request in ``clinic_http_requests_total`` and its latency."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless an answer started: the server answers an escaped error so

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            # The router leaves the route it matched in the scope it was given.
            route = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
            observe_request(route, scope["method"], status, time.perf_counter() - started)
