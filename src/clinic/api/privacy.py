"""Patient data in HTTP answers: never cached, and every staff read of it on record."""

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clinic.api.deps import Staff
from clinic.redaction import mask_email

audit = logging.getLogger("clinic.audit")

_NO_STORE = (b"cache-control", b"no-store")


class NoStore:
    """ASGI middleware: no answer is kept by a browser or proxy cache unless it says so.

    Most answers carry a patient's name, email or appointment; a route whose
    answers may be cached sets its own ``Cache-Control``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append(_NO_STORE)
            await send(message)

        await self.app(scope, receive, no_store)


def audit_read(staff: Staff, what: str, filters: dict[str, object] | None = None) -> None:
    """Record that ``staff`` read patient data: which route, with which filters (masked)."""
    shown = {
        name: mask_email(value) if name == "patientEmail" and isinstance(value, str) else value
        for name, value in (filters or {}).items()
        if value is not None
    }
    audit.info("staff %r read %s %s", staff.name, what, shown or "")
