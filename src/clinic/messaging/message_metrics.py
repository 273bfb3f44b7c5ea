"""Message metrics of every broker: FastStream's Prometheus middleware, labelled by queue.

FastStream counts what a broker consumes (``clinic_received_messages_total``,
``clinic_received_processed_messages_total`` by ``status``, their processing
time in ``clinic_received_processed_messages_duration_seconds``) and publishes
(``clinic_published_messages_total`` by ``status``, and the failures by
exception type in ``clinic_published_messages_exceptions_total``).

Its Rabbit provider names a consumed message by the exchange and routing key it
arrived with, which differ between a first delivery and a retry of the same
queue (a fanout's empty key, the retry queue's dead-lettering). Here the
``handler`` label is the queue the message was consumed from, and the
``destination`` of a publish is its exchange or, on the default exchange, its queue.
"""

from typing import Any

from aio_pika import IncomingMessage
from faststream._internal.context.repository import ContextRepo
from faststream.message.message import StreamMessage
from faststream.prometheus import ConsumeAttrs
from faststream.prometheus.middleware import BasePrometheusMiddleware, PrometheusMiddleware
from faststream.rabbit.prometheus.provider import RabbitMetricsSettingsProvider
from faststream.rabbit.response import RabbitPublishCommand
from prometheus_client import REGISTRY


class _ByQueue(RabbitMetricsSettingsProvider):
    """FastStream's Rabbit labels, with the queue as the consumer's name."""

    __slots__ = ("queue",)

    def __init__(self, queue: str | None) -> None:
        super().__init__()
        self.queue = queue

    def get_consume_attrs_from_message(self, msg: StreamMessage[IncomingMessage]) -> ConsumeAttrs:
        attrs = super().get_consume_attrs_from_message(msg)
        if self.queue:
            attrs["destination_name"] = self.queue
        return attrs

    def get_publish_destination_name_from_cmd(self, cmd: RabbitPublishCommand) -> str:
        return cmd.exchange.name or cmd.destination


class MessageMetrics(PrometheusMiddleware[IncomingMessage, RabbitPublishCommand]):
    """Broker middleware counting messages consumed and published, per queue, as ``clinic_*``."""

    def __init__(self) -> None:
        super().__init__(
            settings_provider_factory=self._provider,
            registry=REGISTRY,
            app_name="clinic",
            metrics_prefix="clinic",
        )
        self._queue: str | None = None

    def __call__(
        self, msg: IncomingMessage | None, /, *, context: ContextRepo
    ) -> BasePrometheusMiddleware[RabbitPublishCommand]:
        # The subscriber handling this message is in the context before the
        # middlewares are made; the provider is made, synchronously, just below.
        handler: Any = context.get_local("handler_") if msg is not None else None
        queue = getattr(handler, "queue", None)
        self._queue = getattr(queue, "name", None)
        return super().__call__(msg, context=context)

    def _provider(self, msg: IncomingMessage | None) -> _ByQueue:
        return _ByQueue(self._queue)
