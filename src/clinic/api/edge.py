"""What the API does around every HTTP request, before any route and after its answer.

Four concerns, each kept in its own module, applied in one ASGI layer so that a
request and each of its messages pass through one wrapper, not four:

- a request breaking a bound on its line, headers or body is refused before any
  route, logger or validator sees it (``clinic.api.request_limits``);
- an error nothing else handled is a 500 with an error id, logged once
  (``clinic.api.failures``);
- no answer is kept by a cache unless its route says so (``clinic.api.privacy``);
- every answer is counted by route template, method and status, and timed; the
  template, never the path asked for, so no booking id reaches a label. A request
  no route took is ``unmatched``. A 500 this layer wrote is counted as a 500.
"""

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clinic.api.failures import answer_unexpected
from clinic.api.privacy import forbid_caching
from clinic.api.request_limits import bounded, refusal, refuse
from clinic.metrics import UNMATCHED_ROUTE, observe_request


class Edge:
    """ASGI middleware, outermost of the clinic's: bounds, unexpected errors, caching, metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answered: int | None = None  # the status, once the answer has started

        async def answer(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = message["status"]
                forbid_caching(message)
            await send(message)

        try:
            if refused := refusal(scope):
                await refuse(answer, refused)
            else:
                # A bound broken while the body arrives raises an HTTPException inside
                # the app, whose own exception handling answers it like any other.
                await self.app(scope, bounded(receive), answer)
        except Exception as exc:  # noqa: BLE001 - a bug: logged with its id, answered 500
            await answer_unexpected(
                exc, scope, receive, answer, answer_started=answered is not None
            )
        finally:
            # The router leaves the route it matched in the scope it was given. An
            # escape past this layer (a cancellation) leaves no answer: the server's 500.
            route = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
            observe_request(route, scope["method"], answered or 500, time.perf_counter() - started)
