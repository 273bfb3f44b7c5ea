"""A lost broker connection logged as what it is to the clinic: a warning, not an error.

When a broker node stops or dies, every message a worker is handling is cancelled
before it is acknowledged, so the broker delivers it again, and aio-pika's channels
fail to reopen on the dead connection until the connection itself is back. FastStream
logs each cancelled message as an ERROR with a traceback of some fifty lines, and
aio-pika each channel's failed reopening as an ERROR: a failover that loses nothing
wrote a dozen of them per worker. Here they are WARNINGs, in one line each, so that an
ERROR still means someone must act. The connection's own loss stays an ERROR
(aiormq's "Unexpected connection close"): a broker node went, and that is worth a look.
"""

import asyncio
import logging

INTERRUPTED = "handling interrupted (%s): unacknowledged, so the broker delivers it again"


class ConnectionLossLines(logging.Filter):
    """Lower the libraries' per-message and per-channel ERRORs of a lost connection."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.ERROR:
            return True
        if record.name.startswith("faststream.access") and _cancelled(record):
            _lower(record)
            # FastStream's own text: "CancelledError: <why, in aiormq's words>".
            record.msg, record.args = INTERRUPTED, (record.getMessage(),)
            record.exc_info = record.exc_text = None
        elif record.name == "aio_pika.tools" and _channel_not_reopened(record):
            _lower(record)
        return True


def _cancelled(record: logging.LogRecord) -> bool:
    """FastStream's line for a handling that was cancelled, not one that failed."""
    exc = record.exc_info[1] if record.exc_info else None
    return isinstance(exc, asyncio.CancelledError)


def _channel_not_reopened(record: logging.LogRecord) -> bool:
    """aio-pika's "Callback <RobustChannel._on_close> error: <why>": the channel could not
    reopen on the lost connection (the connection reopens it once it is back)."""
    args = record.args
    callback = args[0] if isinstance(args, tuple) and args else None
    callback = getattr(callback, "callback", callback)  # inside a OneShotCallback
    return getattr(callback, "__qualname__", None) == "RobustChannel._on_close"


def _lower(record: logging.LogRecord) -> None:
    record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
