"""CLINIC_QUEUE_TYPE=quorum: the same flow on quorum queues, for clustered RabbitMQ."""

import json
from collections.abc import Callable
from pathlib import Path

import aio_pika
import pytest

from clinic.messages import BookingStatus
from tests.stack import Stack, wait_until_terminal

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("clean_db")]

QUORUM_QUEUES = {
    "booking_requests",
    "booking_retry",
    "email_notifications",
    "email_retry",
    "parked_messages",
}


def queue_arguments(rabbitmqctl: Callable[..., str]) -> dict[str, dict[str, object]]:
    listed = json.loads(
        rabbitmqctl("list_queues", "name", "type", "arguments", "--formatter", "json")
    )
    # Each argument is listed as [name, type, value].
    return {
        q["name"]: {"type": q["type"], **{name: value for name, _, value in q["arguments"]}}
        for q in listed
    }


async def test_quorum_queues_retry_park_and_confirm(
    own_vhost: tuple[str, Callable[..., str]], tmp_path: Path
) -> None:
    rabbit_url, rabbitmqctl = own_vhost
    stack = Stack(
        tmp_path,
        rabbitmqctl,
        CLINIC_RABBIT_URL=rabbit_url,
        CLINIC_QUEUE_TYPE="quorum",
        CLINIC_MAX_RETRIES="1",
    )
    try:
        stack.api()
        stack.booking_worker()
        stack.notification_worker()
        await stack.wait_until_ready()
        good = await stack.book(3)
        [buggy] = await stack.book(name="Bug Trigger")

        bookings = {b.id: b for b in await wait_until_terminal([*good, buggy], within=30)}
        await stack.wait_for_emails([*good, buggy])
        await stack.wait_until_settled()
        # Counted over AMQP: rabbitmqctl shows quorum queue depths with a delay.
        connection = await aio_pika.connect(rabbit_url)
        async with connection:
            channel = await connection.channel()
            parked = await channel.declare_queue("parked_messages", passive=True)
        queues = queue_arguments(rabbitmqctl)
    finally:
        stack.stop_all()

    assert {bookings[b].status for b in good} == {BookingStatus.CONFIRMED}
    assert bookings[buggy].reason == "processing failed"
    assert set(stack.emails().values()) == {1}
    assert parked.declaration_result.message_count == 1
    for name in QUORUM_QUEUES:
        assert queues[name]["type"] == "quorum", queues[name]
    for name in QUORUM_QUEUES - {"parked_messages"}:
        assert queues[name]["x-dead-letter-strategy"] == "at-least-once", queues[name]
        assert queues[name]["x-overflow"] == "reject-publish", queues[name]
