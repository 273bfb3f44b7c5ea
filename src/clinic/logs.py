"""Log format shared by the API and the workers, with the booking id on every line.

Every message carries its booking id as the AMQP correlation id. The workers
put it in ``current_booking_id`` for the time a message is handled, the API
for the time a request handles one booking, so each log line says which
booking it is about and one booking can be followed across processes.

Every line is masked as a whole after it is formatted, traceback included, and
cut to a bounded length first: a client controls parts of what is logged (the
request line), so masking must cost time linear in a line that cannot be long.
"""

import json
import logging
import sys
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType

from faststream import BaseMiddleware

from clinic.connection_loss_logs import ConnectionLossLines
from clinic.redaction import error_summary, mask_emails, shorten
from clinic.settings import LogFormat, settings

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
        record.booking_id = _booking_id(record)
        record.message = shorten(record.message)
        if context := _broker_context(record):
            record.message += " (" + ", ".join(f"{k}={v}" for k, v in context.items()) + ")"
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


class JsonFormatter(logging.Formatter):
    """One JSON object per line, cut to size and masked like the text format, for log shippers.

    Each text field is cut and masked before the object is serialised: masking
    works word by word, and JSON's quotes and backslashes end words, so that masks
    what masking the line would, and the escaping after it can never be undone by
    a mask (a ``\\u001b`` cut in two). Quotes, newlines and control characters in a
    message are escaped, so a line is always one valid object.
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "booking_id": None,
            "message": shorten(record.getMessage()),
        }
        if (booking_id := _booking_id(record)) != "-":
            line["booking_id"] = booking_id
        if record.exc_info and record.exc_info[1] is not None:
            line["exception"] = _traceback(record.exc_info[1])
        line.update(_broker_context(record))
        masked = {k: mask_emails(v) if isinstance(v, str) else v for k, v in line.items()}
        return json.dumps(masked, ensure_ascii=False, default=str)


def _booking_id(record: logging.LogRecord) -> str:
    """The booking a line is about: its own ``booking_id``, or the one being handled."""
    return str(getattr(record, "booking_id", None) or current_booking_id.get())


BROKER_FIELDS = ("queue", "exchange", "message_id")
"""What FastStream's broker lines say about their message, kept as fields of ours."""


def _broker_context(record: logging.LogRecord) -> dict[str, str]:
    return {
        name: shorten(value, 200)
        for name in BROKER_FIELDS
        if isinstance(value := getattr(record, name, None), str) and value
    }


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is written (a test swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def log_handler(log_format: LogFormat = "text") -> logging.Handler:
    """A stderr handler writing the clinic's masked format, as text or JSON, with a lost
    broker connection's lines lowered to what they are (``clinic.connection_loss_logs``)."""
    handler = _Stderr()
    handler.setFormatter(JsonFormatter() if log_format == "json" else MaskedFormatter())
    handler.addFilter(ConnectionLossLines())
    return handler


THEIR_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "faststream", "faststream.access")
"""Loggers uvicorn and FastStream give handlers of their own, which lines leave through ours."""


def configure_logging(level: str | None = None, log_format: LogFormat | None = None) -> None:
    """Send every line of this process to stderr through the clinic's masked format.

    Text lines read ``time pid level logger [booking] text``; with
    ``CLINIC_LOG_FORMAT=json`` each line is a JSON object. The process id tells
    apart the worker processes of ``faststream run --workers N``. One handler, on
    the root logger, writes everything: the clinic's lines, uvicorn's (its access
    log quotes the request line, ``GET /bookings?patientEmail=...``), FastStream's,
    the drivers' and Python's warnings. Called by the app factories, once uvicorn
    and ``faststream run`` have set up their own logging and before they log
    anything more; calling it again replaces the handler, so no line is doubled.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Stderr)]:
        root.removeHandler(old)
    root.addHandler(log_handler(log_format or settings.log_format))
    for name in THEIR_LOGGERS:
        logger = logging.getLogger(name)
        # A logger silenced on purpose (uvicorn --no-access-log) has no handler and
        # does not propagate: it stays silent.
        if logger.handlers:
            logger.handlers.clear()
            logger.propagate = True
    clinic = logging.getLogger("clinic")
    clinic.handlers.clear()  # what an earlier version of this function installed
    clinic.propagate = True
    clinic.setLevel((level or settings.log_level).upper())
    # No line names its source file, function or thread: logging need not look them up
    # for every record, walking the caller's stack (the logging HOWTO's "Optimization").
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    logging.captureWarnings(True)
    # Python prints an exception it cannot raise (in a finaliser, or in a coroutine
    # collected at exit) straight to stderr, as lines no log shipper can parse. A hook
    # someone else installed (a test runner's) is theirs, and stays.
    if sys.unraisablehook is sys.__unraisablehook__:
        sys.unraisablehook = _log_unraisable


def _log_unraisable(unraisable: "sys.UnraisableHookArgs") -> None:
    """Log an exception Python could not raise as one line of the clinic's format."""
    try:
        exc = unraisable.exc_value
        logging.getLogger("clinic.unraisable").warning(
            "%s: %r",
            unraisable.err_msg or "Exception ignored in",
            unraisable.object,
            exc_info=(type(exc), exc, unraisable.exc_traceback) if exc is not None else None,
        )
    except Exception:  # noqa: BLE001 - late at exit logging may be gone: print it as Python would
        sys.__unraisablehook__(unraisable)
