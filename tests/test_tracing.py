"""Traces: one booking is one trace, from POST /book through both workers to its email,
and no span holds the patient's data.

The traced test runs the API (with its lifespan) and a booking worker and a
notification worker, each on a broker of its own, in this process against the real
RabbitMQ; the trace crosses the broker only in message headers. Spans go through the
clinic's own export pipeline into OpenTelemetry's in-memory exporter.
"""

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import aio_pika
import pytest
from faststream import FastStream
from faststream.opentelemetry import TelemetryMiddleware
from httpx import AsyncClient
from opentelemetry.sdk.resources import SERVICE_NAME
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pymongo import AsyncMongoClient

from clinic.api import create_app
from clinic.api.main import lifespan
from clinic.clock import utcnow
from clinic.domain.announcements import status_event
from clinic.domain.emails import default_email_sender
from clinic.handlers import booking_router, notifications_router, worker_app
from clinic.mail import Email
from clinic.settings import settings
from clinic.tracing import MISSING_EXTRA, start_tracing, stop_tracing, tracer_provider
from tests.conftest import STAFF, HandedOver, Mailbox, broker_of, publishers_of
from tests.integration import stored_booking, wait_for

PATIENT = "Zoë Tracewell"
EMAIL = "zoe.tracewell@example.com"
FUTURE = (utcnow() + timedelta(days=30)).strftime("%Y-%m-%dT10:30:00Z")


class Exported:
    """The spans this process exported, into memory, through the clinic's own pipeline."""

    def __init__(self) -> None:
        self.memory = InMemorySpanExporter()
        self.provider = tracer_provider("clinic-test", self.memory)

    def now(self) -> list[ReadableSpan]:
        """Every span finished so far, once the batch in progress is exported too."""
        self.provider.force_flush()
        return list(self.memory.get_finished_spans())


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[Exported]:
    """Tracing on for one test, every span exported into memory."""
    monkeypatch.setattr(settings, "tracing", True)
    exported = Exported()
    start_tracing("clinic-test", exported.provider)
    try:
        yield exported
    finally:
        stop_tracing()


@asynccontextmanager
async def consuming(app: FastStream) -> AsyncIterator[None]:
    """A worker app's handlers consuming from the real broker, in this process."""
    broker = broker_of(app)
    await broker.start()
    try:
        yield
    finally:
        await broker.stop()


def named(finished: list[ReadableSpan], name: str) -> ReadableSpan:
    [found] = [span for span in finished if span.name == name]
    return found


def ancestry(finished: list[ReadableSpan], span: ReadableSpan) -> list[str]:
    """The names from ``span`` up to its trace's root, by parent span ids."""
    by_id = {s.context.span_id: s for s in finished}
    names = [span.name]
    while span.parent is not None:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


def texts(span: ReadableSpan) -> list[str]:
    """Every text a span carries out of the process: its name, attributes, events, status."""
    values: list[Any] = [span.name, span.status.description]
    values += list((span.attributes or {}).values())
    for event in span.events:
        values += [event.name, *(event.attributes or {}).values()]
    return [str(value) for value in values]


@pytest.mark.integration
async def test_one_booking_is_one_trace_from_post_book_to_the_email_without_patient_data(
    spans: Exported,
    clean_db: AsyncMongoClient[Any],
    rabbit: aio_pika.abc.AbstractChannel,
    mailbox: Mailbox,
) -> None:
    api = create_app()
    booking_worker = worker_app("clinic booking worker", booking_router())
    notification_worker = worker_app("clinic notification worker", notifications_router())
    with broker_of(notification_worker).provider.scope(default_email_sender, lambda: mailbox):
        async with (
            lifespan(api),
            AsyncClient(transport=HandedOver(app=api), base_url="http://clinic") as http,
            consuming(booking_worker),
            consuming(notification_worker),
        ):
            booked = await http.post(
                "/book", json={"patientName": PATIENT, "patientEmail": EMAIL, "date": FUTURE}
            )
            assert booked.status_code == 202, booked.text
            await wait_for(lambda: asyncio.sleep(0, result=len(mailbox.sent) == 1))
            assert mailbox.sent[0].to == EMAIL
            # Patient data in a query string and in an answer: neither may reach a span.
            listed = await http.get("/bookings", params={"patientEmail": EMAIL}, headers=STAFF)
            assert listed.json()["count"] == 1
            token = {"Authorization": f"Bearer {booked.json()['manageToken']}"}
            opened = await http.get(f"/booking/{booked.json()['id']}", headers=token)
            assert opened.json()["patientName"] == PATIENT

    flow = (
        "POST /book",
        "default.booking_requests publish",
        "default.booking_requests process",
        "booking_notifications. publish",
        "booking_notifications. process",
        "email send",
    )

    async def all_exported() -> list[ReadableSpan] | None:
        # The email's consume span ends last of the booking's, at its ack.
        exported = await asyncio.to_thread(spans.now)
        names = {span.name for span in exported}
        return exported if {"booking_notifications. process", "GET /bookings"} <= names else None

    exported: list[ReadableSpan] = await wait_for(all_exported)
    request = named(exported, "POST /book")
    assert request.kind is SpanKind.SERVER
    assert request.parent is None
    trace = [span for span in exported if span.context.trace_id == request.context.trace_id]
    others = [span.name for span in exported if span not in trace]
    # Only the two later requests are traces of their own: no span of the booking is.
    assert sorted(others) == ["GET /booking/{booking_id}", "GET /bookings"]
    assert {span.name for span in trace}.issuperset(flow)
    # One root: every span of the booking descends from the request.
    assert [span.name for span in trace if span.parent is None] == ["POST /book"]
    # Cause to effect: the email, its event's consume and publish, the request's consume
    # and publish, the request.
    email = named(exported, "email send")
    assert ancestry(exported, email) == [
        "email send",
        "booking_notifications. process",
        "booking_notifications. create",
        "default.booking_requests process",
        "default.booking_requests create",
        "POST /book",
    ]
    assert dict(email.attributes or {}) == {"booking.status": "confirmed"}

    listing = named(exported, "GET /bookings")
    assert str((listing.attributes or {})["http.url"]).endswith("/bookings")
    leaks = {EMAIL, quote(EMAIL), EMAIL.split("@")[0], PATIENT, "Tracewell"}
    for span in exported:
        for text in texts(span):
            assert not any(leak in text for leak in leaks), (span.name, text)


class RefusedOnce(Mailbox):
    """A mail server that refuses the first email with an error naming its recipient, as
    SMTP servers do, then takes it."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = False

    async def send(self, email: Email) -> None:
        if not self.refused:
            self.refused = True
            raise ConnectionError(f"550 mailbox unavailable: Juan Pérez <{email.to}>")
        await super().send(email)


@pytest.mark.integration
async def test_a_failed_send_is_traced_by_its_error_type_only_and_its_retry_joins_its_trace(
    spans: Exported, clean_db: AsyncMongoClient[Any], rabbit: aio_pika.abc.AbstractChannel
) -> None:
    mail_server = RefusedOnce()
    notification_worker = worker_app("clinic notification worker", notifications_router())
    booking = await stored_booking()
    with broker_of(notification_worker).provider.scope(default_email_sender, lambda: mail_server):
        async with consuming(notification_worker):
            await publishers_of(notification_worker).announce(status_event(booking))
            # Sent once the event came back through email_retry.
            await wait_for(lambda: asyncio.sleep(0, result=len(mail_server.sent) == 1))

    async def both_consumes() -> list[ReadableSpan] | None:
        exported = await asyncio.to_thread(spans.now)
        consumed = [span for span in exported if span.name.endswith(" process")]
        return exported if len(consumed) == 2 else None

    exported: list[ReadableSpan] = await wait_for(both_consumes)
    failed, sent = sorted(
        (span for span in exported if span.name == "email send"), key=lambda s: s.start_time or 0
    )
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description is None, "an exception's text in the status"
    [error] = failed.events
    assert (error.name, (error.attributes or {})["exception.type"]) == (
        "exception",
        "ConnectionError",
    )
    assert sent.status.status_code is not StatusCode.ERROR
    assert {span.context.trace_id for span in exported} == {failed.context.trace_id}, (
        "the retry started a trace of its own"
    )
    leaks = {booking.patient_email, booking.patient_name, "Pérez"}
    for span in exported:
        for text in texts(span):
            assert not any(leak in text for leak in leaks), (span.name, text)


def test_tracing_off_adds_no_middleware_and_no_instrumentation() -> None:
    assert settings.tracing is False, "tracing must be off by default"
    api = create_app()
    workers = worker_app("clinic workers", booking_router(), notifications_router())
    for broker in (api.state.broker, broker_of(workers)):
        assert not any(isinstance(m, TelemetryMiddleware) for m in broker.middlewares)
    assert not getattr(api, "_is_instrumented_by_opentelemetry", False)


# Every app of the clinic, imported as uvicorn and `faststream run` import them.
IMPORT_APPS = (
    "import clinic.api, clinic.handlers, clinic.handlers.booking, clinic.handlers.notifications"
)
# As if the tracing extra were not installed: FastAPI needs OpenTelemetry's API, but
# the SDK, its exporters, instrumentations and semantic conventions cannot be imported.
EXTRA = ("sdk", "exporter", "instrumentation", "semconv")
WITHOUT_EXTRA = (
    "import sys; "
    + "".join(f"sys.modules['opentelemetry.{package}'] = None; " for package in EXTRA)
    + IMPORT_APPS
)


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_without_the_extra_the_apps_start_unless_tracing_is_on() -> None:
    off = run_python(WITHOUT_EXTRA)
    assert off.returncode == 0, off.stderr
    on = run_python(WITHOUT_EXTRA, CLINIC_TRACING="true")
    assert on.returncode == 1
    assert on.stderr.strip() == MISSING_EXTRA


def test_the_service_is_named_by_the_process_unless_otel_service_name_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    names = []
    for env_name in (None, "clinic-booking-worker-eu"):
        if env_name:
            monkeypatch.setenv("OTEL_SERVICE_NAME", env_name)
        provider = tracer_provider("clinic-booking-worker", InMemorySpanExporter())
        names.append(provider.resource.attributes[SERVICE_NAME])
        provider.shutdown()
    assert names == ["clinic-booking-worker", "clinic-booking-worker-eu"]


# An operator's global provider, as `opentelemetry-instrument` would install, then a
# booking FastAPI rejects: its own telemetry would record the error, which quotes the body.
GLOBAL_PROVIDER = f"""
import asyncio, httpx
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
memory = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(memory))
trace.set_tracer_provider(provider)
from clinic.api import create_app
async def main():
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://clinic") as http:
        answer = await http.post("/book", json={{"patientName": {PATIENT!r}, "email": 1}})
        assert answer.status_code == 422, answer.text
asyncio.run(main())
print(len(memory.get_finished_spans()))
"""


def test_fastapis_own_telemetry_records_nothing_even_under_a_global_provider() -> None:
    run = run_python(GLOBAL_PROVIDER)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "0", "FastAPI's own telemetry made spans"
