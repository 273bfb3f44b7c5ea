"""Log format shared by the API and the workers, with the booking id on every line.

Every message carries its booking id as the AMQP correlation id. The workers
put it in ``current_booking_id`` for the time a message is handled, the API
for the time a request handles one booking, so each log line says which
booking it is about and one booking can be followed across processes.

Every line is masked as a whole after it is formatted, traceback included, and
cut to a bounded length first: a client controls parts of what is logged (the
request line), so masking must cost time linear in a line that cannot be long.
"""

import logging
import traceback
from contextvars import ContextVar
from types import TracebackType

from faststream import BaseMiddleware

from clinic.redaction import error_summary, mask_emails, shorten

current_booking_id: ContextVar[str] = ContextVar("current_booking_id", default="-")

MAX_TRACEBACK = 8000
"""Characters of a traceback's frames kept, from its end, where the error is."""


_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


def _traceback(exc: BaseException | None) -> str:
    """Where ``exc`` and its causes were raised, each with only its :func:`error_summary`."""
    parts: list[str] = []
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        frames = "".join(traceback.format_tb(exc.__traceback__))
        if len(frames) > MAX_TRACEBACK:
            frames = f"  [{len(frames) - MAX_TRACEBACK} characters cut]\n{frames[-MAX_TRACEBACK:]}"
        parts.append(f"Traceback (most recent call last):\n{frames}{error_summary(exc)}")
        exc = exc.__cause__ or exc.__context__
    return "\n\ncaused by:\n".join(parts)


class MaskedFormatter(logging.Formatter):
    """Format a record, cut its message and traceback to size, and mask the whole line."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(process)d %(levelname)s %(name)s [%(booking_id)s] %(message)s"
        )

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        if not hasattr(record, "booking_id"):  # its own, or the one being handled
            record.booking_id = current_booking_id.get()
        record.message = shorten(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: _ExcInfo) -> str:  # noqa: N802 (logging's name)
        return _traceback(ei[1])

    def format(self, record: logging.LogRecord) -> str:
        record.exc_text = None  # never a traceback another formatter cached, unmasked
        return mask_emails(super().format(record))


class LogBookingId(BaseMiddleware):
    """Broker middleware: the logs written while a message is handled name its booking."""

    async def on_receive(self) -> None:
        correlation_id = getattr(self.msg, "correlation_id", None)
        current_booking_id.set(str(correlation_id) if correlation_id else "-")


def log_handler() -> logging.Handler:
    """A stderr handler writing the clinic's masked format."""
    handler = logging.StreamHandler()
    handler.setFormatter(MaskedFormatter())
    return handler


def configure_logging(level: str) -> None:
    """Send the clinic's and uvicorn's logs to stderr, as ``time pid level logger [booking] text``.

    The process id tells apart the worker processes of ``faststream run --workers N``.
    uvicorn's lines go through the same masking: its access log quotes the request
    line (``GET /bookings?patientEmail=...``), its error log a traceback.
    """
    handler = log_handler()
    for name in ("clinic", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
    logging.getLogger("clinic").setLevel(level.upper())
