"""Log format shared by the API and the workers, with the booking id on every line.

Every message carries its booking id as the AMQP correlation id. The workers
put it in ``current_booking_id`` for the time a message is handled, the API
for the time a request handles one booking, so each log line says which
booking it is about and one booking can be followed across processes.
"""

import logging
from contextvars import ContextVar

from faststream import BaseMiddleware

current_booking_id: ContextVar[str] = ContextVar("current_booking_id", default="-")


class _BookingIdFilter(logging.Filter):
    """Give every record a ``booking_id``: its own, or the one being handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "booking_id"):
            record.booking_id = current_booking_id.get()
        return True


class LogBookingId(BaseMiddleware):
    """Broker middleware: the logs written while a message is handled name its booking."""

    async def on_receive(self) -> None:
        correlation_id = getattr(self.msg, "correlation_id", None)
        current_booking_id.set(str(correlation_id) if correlation_id else "-")


def configure_logging(level: str) -> None:
    """Send the clinic's logs to stderr as ``time level logger [booking id] message``."""
    handler = logging.StreamHandler()
    handler.addFilter(_BookingIdFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(booking_id)s] %(message)s")
    )
    clinic = logging.getLogger("clinic")
    clinic.handlers[:] = [handler]
    clinic.setLevel(level.upper())
    clinic.propagate = False
