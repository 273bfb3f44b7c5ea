"""The API in process, for clients that run an event loop of their own (schemathesis's)."""

import asyncio

from httpx import AsyncClient, Response
from starlette.types import Receive, Scope, Send


class InProcess:
    """An ASGI app that hands every request to the test's client, on the test's event loop.

    Schemathesis calls an ASGI app from a thread and a loop of its own; the API's
    database client belongs to the test's loop, so the request is forwarded there
    and its answer brought back. Call ``use`` from the test, then let schemathesis
    run in a thread (``asyncio.to_thread``) while the test's loop serves it.
    """

    def __init__(self) -> None:
        self._client: AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def use(self, client: AsyncClient) -> None:
        """Forward to ``client``, on the running loop, from now on."""
        self._client, self._loop = client, asyncio.get_running_loop()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The test's event loop."""
        assert self._loop is not None, "call use(client) first"
        return self._loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan here: the test's fixtures set the API up
        body = bytearray()
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        forwarded = asyncio.run_coroutine_threadsafe(self._forward(scope, bytes(body)), self.loop)
        answer = await asyncio.wrap_future(forwarded)
        start = {"type": "http.response.start", "status": answer.status_code}
        await send({**start, "headers": answer.headers.raw})
        await send({"type": "http.response.body", "body": answer.content})

    async def _forward(self, scope: Scope, body: bytes) -> Response:
        assert self._client is not None
        # As sent: still percent-encoded, so the API sees the very request line.
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        return await self._client.request(
            scope["method"], target.decode("latin-1"), headers=scope["headers"], content=body
        )
