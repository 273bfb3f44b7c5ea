"""The outbox relay sends what nobody sent, once, and drops what must not be sent."""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from faststream.rabbit import TestRabbitBroker

from clinic.clock import utcnow
from clinic.domain.announcements import record_status
from clinic.domain.decisions import give_up
from clinic.domain.outbox import record_request_sent, relay_once
from clinic.handlers import worker_app
from clinic.messages import BookingStatus
from clinic.messaging.broker import Publishers
from clinic.store import outbox
from clinic.store.documents import Booking, MessageKind, OutboxRecord
from tests.conftest import broker_of, publishers_of

pytestmark = pytest.mark.usefixtures("clean_db")


@pytest.fixture
async def publishers() -> AsyncIterator[Publishers]:
    """The publishers of a worker app with no handlers, its broker in memory."""
    app = worker_app("relay under test")
    async with TestRabbitBroker(broker_of(app)):
        yield publishers_of(app)


async def booking(
    n: int, status: BookingStatus = BookingStatus.PENDING, *, request_overdue: bool = False
) -> Booking:
    stored = Booking(
        patient_name=f"Paciente {n}",
        patient_email=f"p{n}@example.com",
        date=utcnow() + timedelta(days=3, minutes=n),
        status=status,
        request_due_at=utcnow() - timedelta(seconds=1) if request_overdue else None,
    )
    await stored.insert()
    return stored


async def make_overdue() -> None:
    """Every unsent status record's grace period is over."""
    await OutboxRecord.get_pymongo_collection().update_many(
        {"due_at": {"$type": "date"}}, {"$set": {"due_at": utcnow() - timedelta(seconds=1)}}
    )


async def test_the_relay_publishes_only_requests_the_broker_never_confirmed(
    publishers: Publishers,
) -> None:
    # Still pending past the grace period: three wait in the queue behind others,
    # one was never published (the API died, or the broker refused it).
    confirmed = [await booking(n, request_overdue=True) for n in range(3)]
    lost = await booking(3, request_overdue=True)
    for stored in confirmed:
        await record_request_sent(stored.id)

    assert await relay_once(publishers) == 1
    assert await relay_once(publishers) == 0
    publishers.booking_requests.mock.assert_called_once_with({"bookingId": lost.id})
    sent = await outbox.get(outbox.record_id(MessageKind.REQUEST, lost.id))
    assert sent is not None
    assert sent.sent_at is not None
    settled = await Booking.find({"request_due_at": {"$ne": None}}).count()
    assert settled == 0, "the relay would come back to them"


async def test_a_request_whose_booking_was_decided_is_settled_without_publishing(
    publishers: Publishers,
) -> None:
    # Decided by a worker that cleared nothing: a booking stored by an earlier version.
    decided = await booking(0, BookingStatus.CONFIRMED, request_overdue=True)

    assert await relay_once(publishers) == 0
    publishers.booking_requests.mock.assert_not_called()
    current = await Booking.get(decided.id)
    assert current is not None
    assert current.request_due_at is None, "the relay would come back to it"


async def test_a_request_is_not_published_before_its_grace_period_is_over(
    publishers: Publishers,
) -> None:
    pending = await booking(0)
    await Booking.get_pymongo_collection().update_one(
        {"_id": pending.id}, {"$set": {"request_due_at": utcnow() + timedelta(seconds=60)}}
    )

    assert await relay_once(publishers) == 0
    publishers.booking_requests.mock.assert_not_called()


async def test_a_decision_whose_announcement_kept_failing_is_announced_by_the_relay(
    publishers: Publishers,
) -> None:
    decided = await booking(0, BookingStatus.CONFIRMED)

    # The last attempt: the decision was stored, but publishing it kept failing.
    await give_up(publishers, decided.id)

    kept = await Booking.get(decided.id)
    assert kept is not None
    assert kept.status is BookingStatus.CONFIRMED, "a stored decision was overturned"
    publishers.status_changes.mock.assert_not_called()
    await make_overdue()
    assert await relay_once(publishers) == 1
    assert await relay_once(publishers) == 0
    [call] = publishers.status_changes.mock.call_args_list
    assert call.args[0]["status"] == "confirmed"


async def test_a_status_change_that_never_happened_is_dropped_not_announced(
    publishers: Publishers,
) -> None:
    # Recorded before a cancellation whose update never came: the booking is still pending.
    pending = await booking(0)
    assert await record_status(pending.id, BookingStatus.CANCELLED)
    await make_overdue()

    assert await relay_once(publishers) == 0
    publishers.status_changes.mock.assert_not_called()
    assert (
        await outbox.get(outbox.record_id(MessageKind.STATUS, pending.id, BookingStatus.CANCELLED))
        is None
    )


async def test_relays_competing_for_the_same_records_send_each_once(
    publishers: Publishers,
) -> None:
    pending = [await booking(n, request_overdue=True) for n in range(20)]

    sent = await asyncio.gather(*(relay_once(publishers) for _ in range(3)))

    assert sum(sent) == 20
    published = [c.args[0]["bookingId"] for c in publishers.booking_requests.mock.call_args_list]
    assert sorted(published) == sorted(b.id for b in pending)
