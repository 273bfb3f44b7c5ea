"""Traces, optional: one trace per booking, from ``POST /book`` through both workers to the email.

Off unless ``CLINIC_TRACING`` is true. Then each process sends its spans, in batches,
over OTLP/HTTP to ``OTEL_EXPORTER_OTLP_ENDPOINT``; OpenTelemetry's SDK reads that and
every other ``OTEL_*`` variable itself. The service is named by ``OTEL_SERVICE_NAME``,
else by the process (``clinic-api``, ``clinic-booking-worker``, ...).

FastAPI's instrumentation makes a span of each request, and FastStream's telemetry
middleware one of each publish and each consume. A publish writes the current trace
into the message's headers (W3C ``traceparent``) and a consume continues it, so the
booking worker's span, its announcement, the notification worker's span and the
email's all join the trace of the request that stored the booking.

No patient data leaves in a span: each is copied before export without URL query
strings, the client's address, captured headers or exception texts (a message body or
a database error can hold a patient's data), with email addresses masked in what is
left. The clinic's own spans carry a status, never a name or an address.

OpenTelemetry is the ``tracing`` extra: nothing imports it while tracing is off.
"""

import importlib
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from clinic.redaction import mask_emails
from clinic.settings import settings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from faststream._internal.types import BrokerMiddleware
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from opentelemetry.trace import Tracer
    from opentelemetry.util.types import Attributes, AttributeValue

MISSING_EXTRA = (
    "CLINIC_TRACING is on, but OpenTelemetry is not installed: "
    "install clinic[tracing], or unset CLINIC_TRACING."
)
"""Why a process with tracing on and without the extra refuses to start."""
_EXTRA = (
    "opentelemetry.sdk.trace",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.instrumentation.fastapi",
    "faststream.rabbit.opentelemetry",
)
UNTRACED_URLS = "/health$,/ready$,/metrics$"
"""Probes and scrapes, polled every few seconds: no trace of them unless
``OTEL_PYTHON_FASTAPI_EXCLUDED_URLS`` says otherwise."""

# Attributes that would name a patient or their connection: the query string
# (GET /bookings?patientEmail=...), the client's address, headers an operator chose
# to capture, and exception texts.
_DROPPED = frozenset(
    {
        "url.query",
        "client.address",
        "client.port",
        "net.peer.ip",
        "net.peer.port",
        "network.peer.address",
        "network.peer.port",
        "net.sock.peer.addr",
        "net.sock.peer.port",
        "http.client_ip",
        "exception.message",
        "exception.stacktrace",
    }
)
_DROPPED_PREFIXES = ("http.request.header.", "http.response.header.")
_URLS = frozenset({"http.url", "url.full", "http.target"})

_provider: "TracerProvider | None" = None
_tracer: "Tracer | None" = None


def start_tracing(service: str, provider: "TracerProvider | None" = None) -> None:
    """When ``CLINIC_TRACING`` is on, trace this process as ``service`` from now on.

    Spans go to the OTLP endpoint unless a test passes a ``provider`` of its own
    (see ``tracer_provider``). Without one, the first call of a process decides and
    later ones change nothing, so every app one process builds joins the same traces.
    With tracing on and the extra missing, the process exits with ``MISSING_EXTRA``.
    """
    global _provider, _tracer
    if not settings.tracing or (_provider is not None and provider is None):
        return
    try:
        for module in _EXTRA:
            importlib.import_module(module)
    except ImportError:
        raise SystemExit(MISSING_EXTRA) from None
    if provider is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider = tracer_provider(service, OTLPSpanExporter())
    _provider, _tracer = provider, provider.get_tracer("clinic")


def stop_tracing() -> None:
    """Send what spans are left and trace nothing more in this process."""
    global _provider, _tracer
    if _provider is not None:
        _provider.shutdown()
    _provider = _tracer = None


def tracer_provider(service: str, exporter: "SpanExporter") -> "TracerProvider":
    """A provider batching spans to ``exporter``, each copied without patient data first."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=_resource(service))
    # The exporter is duck-typed (PrivateSpans): this module imports without the SDK.
    provider.add_span_processor(BatchSpanProcessor(PrivateSpans(exporter)))  # type: ignore[arg-type]
    return provider


def _resource(service: str) -> "Resource":
    """What the SDK reads from ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES``,
    named ``service`` if they name no service."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    detected = Resource.create()
    if str(detected.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        return detected.merge(Resource({SERVICE_NAME: service}))
    return detected


def broker_middlewares() -> "tuple[BrokerMiddleware[Any, Any], ...]":
    """While tracing is on, FastStream's telemetry middleware: a span of every publish and
    consume, the trace carried in the message headers. Otherwise none."""
    if _provider is None:
        return ()
    from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware

    return (RabbitTelemetryMiddleware(tracer_provider=_provider),)


def instrument_api(app: "FastAPI") -> None:
    """While tracing is on, make a span of every request ``app`` answers, named by its route."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=_provider,
        excluded_urls=os.environ.get("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", UNTRACED_URLS),
        # A span per ASGI message says nothing the request's own span does not.
        exclude_spans=["receive", "send"],
    )


@contextmanager
def span(name: str, attributes: Mapping[str, str]) -> Iterator[None]:
    """A span of the block, in the current trace, while tracing is on.

    Its attributes are the caller's promise: a status or a kind, never a patient's data.
    """
    if _tracer is None:
        yield
        return
    with _tracer.start_as_current_span(name, attributes=attributes):
        yield


class PrivateSpans:
    """A span exporter that hands ``exporter`` copies of the spans without patient data."""

    def __init__(self, exporter: "SpanExporter") -> None:
        self._exporter = exporter

    def export(self, spans: "Sequence[ReadableSpan]") -> "SpanExportResult":
        return self._exporter.export([_private(span) for span in spans])

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)


def _private(span: "ReadableSpan") -> "ReadableSpan":
    """``span`` without the attributes, event texts and status text that could hold patient data."""
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.trace import Status

    return ReadableSpan(
        name=mask_emails(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_private_attributes(span.attributes),
        events=[
            Event(event.name, _private_attributes(event.attributes), event.timestamp)
            for event in span.events
        ],
        links=span.links,
        kind=span.kind,
        # Its description is an exception's text; the exception's type stays in its event.
        status=Status(span.status.status_code),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _private_attributes(attributes: "Attributes") -> "dict[str, AttributeValue]":
    kept: dict[str, AttributeValue] = {}
    for key, value in (attributes or {}).items():
        if key in _DROPPED or key.startswith(_DROPPED_PREFIXES):
            continue
        if key in _URLS and isinstance(value, str):
            value = value.partition("?")[0]
        if isinstance(value, str):
            value = mask_emails(value)
        elif isinstance(value, Sequence) and all(isinstance(item, str) for item in value):
            value = [mask_emails(str(item)) for item in value]
        kept[key] = value
    return kept
