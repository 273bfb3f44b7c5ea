"""The notification worker emails once per status change, in memory on the real database."""

from datetime import timedelta

import pytest
from faststream.rabbit import TestRabbitBroker

from clinic.email_claims import SendInProgress, claim_id
from clinic.emails import Email, default_email_sender
from clinic.handlers import app  # noqa: F401  (registers both handlers on the broker)
from clinic.messages import BookingStatus, BookingStatusChanged
from clinic.models import EmailClaim, utcnow
from clinic.settings import settings
from clinic.topology import NOTIFICATIONS_EXCHANGE, broker
from tests.conftest import Outbox

pytestmark = pytest.mark.usefixtures("clean_db")


def confirmed(booking_id: str = "b-1") -> BookingStatusChanged:
    return BookingStatusChanged(
        booking_id=booking_id,
        status=BookingStatus.CONFIRMED,
        patient_name="José Ñúñez",
        patient_email="jose@example.com",
        date=utcnow() + timedelta(days=3),
        occurred_at=utcnow(),
    )


async def deliver(event: BookingStatusChanged) -> None:
    await broker.publish(event, exchange=NOTIFICATIONS_EXCHANGE)


async def test_an_event_delivered_twice_sends_one_email(outbox: Outbox) -> None:
    event = confirmed()
    async with TestRabbitBroker(broker):
        await deliver(event)
        await deliver(event)

    assert [e.to for e in outbox.sent] == ["jose@example.com"]
    claim = await EmailClaim.get(claim_id(event))
    assert claim is not None
    assert claim.sent
    assert claim.sent_at is not None


async def test_each_status_of_a_booking_gets_its_own_email(outbox: Outbox) -> None:
    event = confirmed()
    rejected = event.model_copy(update={"status": BookingStatus.REJECTED})
    async with TestRabbitBroker(broker):
        await deliver(event)
        await deliver(rejected)

    assert len(outbox.sent) == 2
    assert await EmailClaim.find_all().count() == 2


async def test_a_send_that_never_finished_is_retried_after_the_send_timeout(
    outbox: Outbox,
) -> None:
    event = confirmed()
    # A worker claimed it and died mid-send, longer ago than a send may take.
    long_ago = utcnow() - timedelta(seconds=settings.email_send_timeout + 1)
    await EmailClaim(
        id=claim_id(event), booking_id=event.booking_id, status=event.status, claimed_at=long_ago
    ).insert()
    async with TestRabbitBroker(broker):
        await deliver(event)

    assert len(outbox.sent) == 1
    claim = await EmailClaim.get(claim_id(event))
    assert claim is not None
    assert claim.sent
    assert claim.attempts == 2


async def test_a_send_in_progress_elsewhere_is_retried_later_not_sent_again(
    outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    event = confirmed()
    await EmailClaim(id=claim_id(event), booking_id=event.booking_id, status=event.status).insert()
    async with TestRabbitBroker(broker):
        await deliver(event)

    assert outbox.sent == []
    [retry] = [r for r in caplog.records if r.name == "clinic.retries"]
    assert "attempt 1 failed on email_notifications" in retry.getMessage()
    assert SendInProgress.__name__ in retry.getMessage()
    claim = await EmailClaim.get(claim_id(event))
    assert claim is not None
    assert not claim.sent
    assert claim.attempts == 1


async def test_a_failed_send_gives_the_claim_back_for_the_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class MailServerDownOnce(Outbox):
        async def send(self, email: Email) -> None:
            if not hasattr(self, "failed"):
                self.failed = True
                raise ConnectionError("mail server unreachable")
            await super().send(email)

    event = confirmed()
    server = MailServerDownOnce()
    with broker.provider.scope(default_email_sender, lambda: server):
        async with TestRabbitBroker(broker):
            await deliver(event)
            assert "ConnectionError: mail server unreachable" in caplog.text
            assert await EmailClaim.get(claim_id(event)) is None
            await deliver(event)  # the retry

    assert len(server.sent) == 1
