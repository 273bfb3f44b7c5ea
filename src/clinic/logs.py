"""Log format shared by the API and the workers, with the booking id on every line.

Every message carries its booking id as the AMQP correlation id. The workers
put it in ``current_booking_id`` for the time a message is handled, the API
for the time a request handles one booking, so each log line says which
booking it is about and one booking can be followed across processes.
"""

import logging
import re
from contextvars import ContextVar

from faststream import BaseMiddleware

current_booking_id: ContextVar[str] = ContextVar("current_booking_id", default="-")


def mask_email(email: str) -> str:
    """``juan.perez@example.com`` -> ``j***@example.com``: enough to tell patients apart."""
    local, at, domain = email.partition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


class _BookingIdFilter(logging.Filter):
    """Give every record a ``booking_id``: its own, or the one being handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "booking_id"):
            record.booking_id = current_booking_id.get()
        return True


_EMAIL = re.compile(r"[^\s@/?&=:\"',;<>()\[\]]+(?:@|%40)[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


class MaskEmails(logging.Filter):
    """Mask email addresses in any log line, e.g. an access log's query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _EMAIL.sub(_masked, arg) if isinstance(arg, str) else arg for arg in record.args
            )
        if isinstance(record.msg, str):
            record.msg = _EMAIL.sub(_masked, record.msg)
        return True


def _masked(match: re.Match[str]) -> str:
    return mask_email(match[0].replace("%40", "@"))


class LogBookingId(BaseMiddleware):
    """Broker middleware: the logs written while a message is handled name its booking."""

    async def on_receive(self) -> None:
        correlation_id = getattr(self.msg, "correlation_id", None)
        current_booking_id.set(str(correlation_id) if correlation_id else "-")


def configure_logging(level: str) -> None:
    """Send the clinic's logs to stderr as ``time pid level logger [booking id] message``.

    The process id tells apart the worker processes of ``faststream run --workers N``.
    """
    handler = logging.StreamHandler()
    handler.addFilter(_BookingIdFilter())
    handler.addFilter(MaskEmails())
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s %(process)d %(levelname)s %(name)s [%(booking_id)s] %(message)s"
        )
    )
    clinic = logging.getLogger("clinic")
    clinic.handlers[:] = [handler]
    clinic.setLevel(level.upper())
    clinic.propagate = False
    # Query strings (GET /bookings?patientEmail=...) reach uvicorn's access log.
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, MaskEmails) for f in access.filters):
        access.addFilter(MaskEmails())
