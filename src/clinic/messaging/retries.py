"""Retry or park: what happens to a message whose handling raised.

A handler failure is retried through the broker: the subscriber rejects the
message, its queue dead-letters it into a retry queue, and the retry queue's TTL
sends it back. The broker's own ``x-death`` header counts the attempts, so the
count survives worker crashes and is shared by every worker process.

A message that can never succeed (not JSON, wrong schema, unknown booking), or
one that has used up ``CLINIC_MAX_RETRIES``, is parked in ``parked_messages``
with the reason, and acknowledged so that other messages keep flowing.

Each failed attempt is one log line; the traceback is logged once, when the
message is parked after its last retry.
"""

import json
import logging
from types import TracebackType
from typing import Any
from uuid import uuid4

from aio_pika import IncomingMessage
from faststream import BaseMiddleware
from faststream.rabbit.message import RabbitMessage
from pydantic import ValidationError

from clinic.clock import utcnow
from clinic.messaging.broker import Publishers
from clinic.metrics import ParkReason, count_parked, count_retried
from clinic.redaction import error_summary
from clinic.settings import settings

log = logging.getLogger("clinic.retries")

PARKED_REASON_HEADER = "x-parked-reason"
PARKED_FROM_HEADER = "x-parked-from"
PARKED_AT_HEADER = "x-parked-at"


class NeverSucceeds(Exception):  # noqa: N818 - it names the situation, not an error kind
    """Raised by a handler when retrying the message cannot help (e.g. unknown booking)."""


def failed_attempts(headers: dict[str, Any] | None, queue: str) -> int:
    """How often ``queue`` has already rejected this message, per the broker's ``x-death``."""
    deaths = (headers or {}).get("x-death") or []
    return sum(
        int(death.get("count", 0))
        for death in deaths
        if isinstance(death, dict)
        and death.get("queue") == queue
        and death.get("reason") == "rejected"
    )


def delivered_before(message: RabbitMessage, queue: str) -> bool:
    """Whether an earlier delivery of this message may have been handled in part: its
    consumer died before acking (a redelivery), or it failed (a retry)."""
    return bool(message.raw_message.redelivered) or failed_attempts(message.headers, queue) > 0


def is_last_attempt(headers: dict[str, Any] | None, queue: str) -> bool:
    """True when a failure now would park the message instead of retrying it."""
    return failed_attempts(headers, queue) >= settings.max_retries


def _cannot_succeed(exc: BaseException) -> bool:
    return isinstance(
        exc, NeverSucceeds | ValidationError | json.JSONDecodeError | UnicodeDecodeError
    )


async def park(publishers: Publishers, raw: IncomingMessage, queue: str, reason: str) -> None:
    """Keep ``raw`` in the parking queue with why it failed and where it came from."""
    headers = {k: v for k, v in (raw.headers or {}).items() if k != "x-death"}
    headers[PARKED_REASON_HEADER] = reason[:1000]
    headers[PARKED_FROM_HEADER] = queue
    headers[PARKED_AT_HEADER] = utcnow().isoformat()
    await publishers.park(
        raw.body,
        headers=headers,
        correlation_id=raw.correlation_id,
        content_type=raw.content_type,
        # Every parked message gets an id, so an operator can replay just that one.
        message_id=raw.message_id or str(uuid4()),
    )


class RetryOrPark(BaseMiddleware):
    """Broker middleware: park hopeless or exhausted messages, let the rest be retried.

    It parks through the ``publishers`` the worker app put in the broker's context.
    """

    async def after_processed(
        self,
        exc_type: type[BaseException] | None = None,
        exc_val: BaseException | None = None,
        exc_tb: TracebackType | None = None,
    ) -> bool | None:
        if exc_val is None or not isinstance(exc_val, Exception):
            return False
        raw: IncomingMessage = self.msg  # type: ignore[assignment]  # always set on consume
        queue = self.context.get_local("handler_").queue.name
        reason = error_summary(exc_val)
        kind: ParkReason
        if _cannot_succeed(exc_val):
            kind = "hopeless" if isinstance(exc_val, NeverSucceeds) else "invalid"
            log.warning("parking message from %s: %s", queue, reason)
        elif is_last_attempt(raw.headers, queue):
            kind = "out_of_retries"
            reason = f"gave up after {settings.max_retries} retries: {reason}"
            # One traceback per parked message: enough to find a bug, not a flood.
            log.error("parking message from %s: %s", queue, reason, exc_info=exc_val)
        else:
            attempt = failed_attempts(raw.headers, queue) + 1
            log.warning(
                "attempt %d failed on %s, retrying in %gs: %s",
                attempt,
                queue,
                settings.retry_delay,
                reason,
            )
            # Rejected here, into the retry queue, and the failure counted as handled:
            # one line per attempt in the log, not a traceback each time.
            await raw.reject(requeue=False)
            count_retried(queue)
            return True
        await park(self.context.get("publishers"), raw, queue, reason)
        count_parked(queue, kind)
        return True  # handled: the subscriber acknowledges the original
