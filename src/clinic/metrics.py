"""The clinic's Prometheus metrics: what an operator graphs and alerts on.

Every process (the API, each worker process) keeps its own figures in
prometheus_client's default registry and serves them on its ``/metrics``.
FastStream's Prometheus middleware adds the per-queue message figures
(``clinic_received_*``, ``clinic_published_*``, see ``clinic.messaging.message_metrics``).

No label holds patient data or a booking id: labels are route templates, HTTP
methods and statuses, queue names and small fixed sets of outcomes, so the
number of series stays small whatever the traffic.
"""

from functools import cache
from typing import Literal, get_args

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

UNMATCHED_ROUTE = "unmatched"
"""The route label of a request no route took (a 404, or refused before routing)."""
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""HTTP methods counted by name; any other is counted as ``other``."""

Outcome = Literal["received", "confirmed", "rejected", "cancelled", "no_show"]
EmailResult = Literal["sent", "failed", "refused"]
ParkReason = Literal["invalid", "hopeless", "out_of_retries"]

HTTP_REQUESTS = Counter(
    "clinic_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "clinic_http_request_duration_seconds",
    "Seconds from a request's arrival to the end of its answer, by route template and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
BOOKINGS = Counter(
    "clinic_bookings",
    "Bookings by outcome: received (stored, 202), confirmed, rejected, cancelled, "
    "no_show (marked by staff). "
    "Each booking counts once per outcome, however often its messages are delivered.",
    ["outcome"],
)
EMAILS = Counter(
    "clinic_emails",
    "Emails to patients, by result: sent, failed (it will be retried), or refused for good.",
    ["result"],
)
MESSAGES_RETRIED = Counter(
    "clinic_messages_retried",
    "Messages whose handling failed, rejected into their queue's retry queue.",
    ["queue"],
)
MESSAGES_PARKED = Counter(
    "clinic_messages_parked",
    "Messages kept in parked_messages for an operator, by the queue they came from and why: "
    "invalid (not JSON, wrong schema), hopeless (e.g. unknown booking), out_of_retries.",
    ["queue", "reason"],
)
# Not registered until a process reads them (the API's /metrics): a worker that
# does not read the database for them must not show a misleading 0.
OUTBOX_OLDEST_UNSENT = Gauge(
    "clinic_outbox_oldest_unsent_seconds",
    "Seconds since the oldest message the outbox still has to send was recorded "
    "(0 when none is waiting); NaN when the database did not answer.",
    registry=None,
)
PENDING_BOOKINGS = Gauge(
    "clinic_pending_bookings",
    "Bookings waiting for a decision (counted up to CLINIC_MAX_PENDING + 1); NaN when "
    "the database did not answer.",
    registry=None,
)

# Every fixed label value shows from the start, so a rate over it is defined at once.
for _outcome in get_args(Outcome):
    BOOKINGS.labels(_outcome)
for _result in ("sent", "failed"):
    EMAILS.labels(_result)


def count_booking(outcome: Outcome) -> None:
    """Count one booking reaching ``outcome`` (call it only where the change won)."""
    BOOKINGS.labels(outcome).inc()


def count_email(result: EmailResult) -> None:
    """Count one email sent, or one send that failed."""
    EMAILS.labels(result).inc()


def count_retried(queue: str) -> None:
    """Count a failed message of ``queue`` sent to its retry queue."""
    MESSAGES_RETRIED.labels(queue).inc()


def count_parked(queue: str, reason: ParkReason) -> None:
    """Count a message of ``queue`` parked, with the kind of reason."""
    MESSAGES_PARKED.labels(queue, reason).inc()


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered HTTP request and its duration."""
    count, duration = _request_series(route, method if method in METHODS else "other", status)
    count.inc()
    duration.observe(seconds)


@cache
def _request_series(route: str, method: str, status: int) -> tuple[Counter, Histogram]:
    # Looking a labelled series up takes a lock and checks its labels, on every request;
    # the labels are route templates, methods and statuses, so the series are few.
    return HTTP_REQUESTS.labels(route, method, str(status)), HTTP_DURATION.labels(route, method)


_backlog_shown = False


def show_backlog(oldest_unsent: float, pending: float) -> None:
    """Set the backlog gauges (registering them the first time): seconds, and bookings."""
    global _backlog_shown  # registered once per process
    if not _backlog_shown:
        REGISTRY.register(OUTBOX_OLDEST_UNSENT)
        REGISTRY.register(PENDING_BOOKINGS)
        _backlog_shown = True
    OUTBOX_OLDEST_UNSENT.set(oldest_unsent)
    PENDING_BOOKINGS.set(pending)


def exposition() -> tuple[bytes, str]:
    """This process's metrics in the Prometheus text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
