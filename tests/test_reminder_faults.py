"""A reminder survives a crash: a booking worker killed between announcing a reminder
and marking it sent still gives the patient exactly one reminder.

Real processes on the real broker and database. The booking workers' outbox relay
runs a month ahead (``FAULT_CLOCK_AHEAD``), so the reminder of an appointment a
month away falls due now.
"""

import json
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import pytest

from clinic.clock import utcnow
from clinic.messages import BookingStatus
from clinic.store import outbox
from clinic.store.documents import MessageKind, OutboxRecord
from tests.conftest import vhost_rabbitmqctl
from tests.integration import wait_for
from tests.stack import Stack, log_count, wait_until_terminal

pytestmark = [pytest.mark.faults, pytest.mark.timeout(180), pytest.mark.usefixtures("clean_db")]


@pytest.fixture
def stack(tmp_path: Path, rabbit: aio_pika.abc.AbstractChannel) -> Iterator[Stack]:
    clinic = Stack(tmp_path, vhost_rabbitmqctl)
    try:
        yield clinic
    finally:
        clinic.stop_all()


async def test_a_worker_killed_after_announcing_a_reminder_still_gives_exactly_one(
    stack: Stack,
) -> None:
    stack.api()
    notifications = stack.notification_worker()
    first = stack.booking_worker("booking-1")
    await stack.wait_until_ready()
    [booking_id] = await stack.book()
    [booking] = await wait_until_terminal([booking_id])
    assert booking.status is BookingStatus.CONFIRMED
    await stack.wait_for_emails([booking_id])
    await stack.wait_until_settled()
    first.kill()

    [record] = await OutboxRecord.find(OutboxRecord.kind == MessageKind.REMINDER).to_list()
    assert record.due_at is not None
    ahead = {"FAULT_CLOCK_AHEAD": str((record.due_at - utcnow()).total_seconds() + 60)}
    second = stack.booking_worker("booking-2", FAULT_CRASH_POINT="after_reminder_publish", **ahead)
    assert await stack.wait_for_marker("after_reminder_publish") == booking_id
    second.kill()
    announced = await outbox.get(record.id)
    assert announced is not None
    assert announced.sent_at is None  # announced, never marked sent

    stack.booking_worker("booking-3", **ahead)

    async def marked_sent() -> bool:
        current = await outbox.get(record.id)
        return current is not None and current.sent_at is not None

    await wait_for(marked_sent, within=30)
    await stack.wait_until_settled()
    subjects = [
        json.loads(line)["subject"].split(":")[0] for line in stack.mailbox.read_text().splitlines()
    ]
    assert subjects == ["Su cita está confirmada", "Recordatorio de su cita"]
    # The relay announced it twice; the email's outbox record made that one email.
    assert log_count(notifications.log, "email already sent; duplicate ignored") == 1
