"""Patient data in HTTP answers: never cached, and every staff read of it on record."""

import logging

from starlette.types import Message

from clinic.api.deps import Staff
from clinic.redaction import mask_email

audit = logging.getLogger("clinic.audit")

_NO_STORE = (b"cache-control", b"no-store")


def forbid_caching(start: Message) -> None:
    """Mark an answer, by its ``http.response.start`` message, as never to be kept by a
    browser or proxy cache, unless its route set a ``Cache-Control`` of its own.

    Most answers carry a patient's name, email or appointment.
    """
    headers = start.setdefault("headers", [])
    if not any(name.lower() == b"cache-control" for name, _ in headers):
        headers.append(_NO_STORE)


def audit_read(staff: Staff, what: str, filters: dict[str, object] | None = None) -> None:
    """Record that ``staff`` read patient data: which route, with which filters (masked)."""
    shown = {
        name: mask_email(value) if name == "patientEmail" and isinstance(value, str) else value
        for name, value in (filters or {}).items()
        if value is not None
    }
    audit.info("staff %r read %s %s", staff.name, what, shown or "")
