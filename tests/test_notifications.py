"""The notification handler emails once per status change, in memory on the real database."""

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from faststream import FastStream
from faststream.rabbit import RabbitBroker, TestRabbitBroker

from clinic.clock import utcnow
from clinic.domain.emails import SendInProgress, default_email_sender
from clinic.mail import Email
from clinic.messages import BookingStatus, BookingStatusChanged
from clinic.messaging.topology import NOTIFICATIONS
from clinic.settings import settings
from clinic.store import outbox
from clinic.store.documents import Booking, MessageKind, OutboxRecord
from tests.conftest import Mailbox, broker_of

pytestmark = pytest.mark.usefixtures("clean_db")


@pytest.fixture
async def broker(notification_handler: FastStream) -> AsyncIterator[RabbitBroker]:
    """The notification handler's broker, in memory."""
    async with TestRabbitBroker(broker_of(notification_handler)) as broker:
        yield broker


WHEN = utcnow() + timedelta(days=3)


@pytest.fixture(autouse=True)
async def booking(clean_db: object) -> Booking:
    """The booking the events are about: the email's address is read from it."""
    stored = Booking(
        id="b-1", patient_name="José Ñúñez", patient_email="jose@example.com", date=WHEN
    )
    await stored.insert()
    return stored


def confirmed(booking_id: str = "b-1") -> BookingStatusChanged:
    return BookingStatusChanged(
        booking_id=booking_id,
        status=BookingStatus.CONFIRMED,
        date=WHEN,
        occurred_at=utcnow(),
    )


def email_record_id(event: BookingStatusChanged) -> str:
    return outbox.record_id(MessageKind.EMAIL, event.booking_id, event.status)


async def email_record(event: BookingStatusChanged) -> OutboxRecord | None:
    return await OutboxRecord.get(email_record_id(event))


async def test_an_event_delivered_twice_sends_one_email(
    broker: RabbitBroker, mailbox: Mailbox
) -> None:
    event = confirmed()
    await broker.publish(event, exchange=NOTIFICATIONS)
    await broker.publish(event, exchange=NOTIFICATIONS)

    assert [e.to for e in mailbox.sent] == ["jose@example.com"]
    record = await email_record(event)
    assert record is not None
    assert record.sent_at is not None
    assert record.due_at is None


async def test_each_status_of_a_booking_gets_its_own_email(
    broker: RabbitBroker, mailbox: Mailbox
) -> None:
    event = confirmed()
    rejected = event.model_copy(update={"status": BookingStatus.REJECTED})
    await broker.publish(event, exchange=NOTIFICATIONS)
    await broker.publish(rejected, exchange=NOTIFICATIONS)

    assert len(mailbox.sent) == 2
    assert await OutboxRecord.find(OutboxRecord.kind == MessageKind.EMAIL).count() == 2


async def test_a_send_that_never_finished_is_retried_after_the_send_timeout(
    broker: RabbitBroker, mailbox: Mailbox
) -> None:
    event = confirmed()
    # A worker recorded it and died mid-send, longer ago than a send may take.
    stale = outbox.new_record(MessageKind.EMAIL, event.booking_id, event.status, 0)
    stale.due_at = utcnow() - timedelta(seconds=1)
    await stale.insert()
    await broker.publish(event, exchange=NOTIFICATIONS)

    assert len(mailbox.sent) == 1
    record = await email_record(event)
    assert record is not None
    assert record.sent_at is not None
    assert record.attempts == 2


async def test_a_send_in_progress_elsewhere_is_retried_later_not_sent_again(
    broker: RabbitBroker, mailbox: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    event = confirmed()
    lease = settings.email_send_timeout
    await outbox.new_record(MessageKind.EMAIL, event.booking_id, event.status, lease).insert()
    await broker.publish(event, exchange=NOTIFICATIONS)

    assert mailbox.sent == []
    [retry] = [r for r in caplog.records if r.name == "clinic.retries"]
    assert "attempt 1 failed on email_notifications" in retry.getMessage()
    assert SendInProgress.__name__ in retry.getMessage()
    record = await email_record(event)
    assert record is not None
    assert record.sent_at is None
    assert record.attempts == 1


async def test_a_failed_send_gives_the_record_back_for_the_retry(
    broker: RabbitBroker, caplog: pytest.LogCaptureFixture
) -> None:
    class MailServerDownOnce(Mailbox):
        async def send(self, email: Email) -> None:
            if not hasattr(self, "failed"):
                self.failed = True
                raise ConnectionError("mail server unreachable")
            await super().send(email)

    event = confirmed()
    server = MailServerDownOnce()
    with broker.provider.scope(default_email_sender, lambda: server):
        await broker.publish(event, exchange=NOTIFICATIONS)
        assert "ConnectionError: mail server unreachable" in caplog.text
        assert await email_record(event) is None
        await broker.publish(event, exchange=NOTIFICATIONS)  # the retry

    assert len(server.sent) == 1


async def test_an_event_names_no_patient_and_a_booking_that_is_gone_gets_no_email(
    broker: RabbitBroker, mailbox: Mailbox, booking: Booking
) -> None:
    event = confirmed()
    wire = event.model_dump_json(by_alias=True)
    assert "jose" not in wire.lower()
    assert "Ñúñez" not in wire
    await booking.delete()

    await broker.publish(event, exchange=NOTIFICATIONS)

    assert mailbox.sent == []
