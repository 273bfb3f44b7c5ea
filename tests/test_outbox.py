"""The outbox relay sends what nobody sent, once, and drops what must not be sent."""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from faststream.rabbit import TestRabbitBroker

from clinic.clock import utcnow
from clinic.domain.decisions import give_up
from clinic.domain.outbox import record_request, record_status, relay_once
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


async def booking(n: int, status: BookingStatus = BookingStatus.PENDING) -> Booking:
    stored = Booking(
        patient_name=f"Paciente {n}",
        patient_email=f"p{n}@example.com",
        date=utcnow() + timedelta(days=3, minutes=n),
        status=status,
    )
    await stored.insert()
    return stored


async def make_overdue() -> None:
    """Every unsent record's grace period is over."""
    await OutboxRecord.get_pymongo_collection().update_many(
        {"due_at": {"$type": "date"}}, {"$set": {"due_at": utcnow() - timedelta(seconds=1)}}
    )


async def test_the_relay_publishes_only_requests_the_broker_never_confirmed(
    publishers: Publishers,
) -> None:
    confirmed = [await booking(n) for n in range(3)]
    lost = await booking(3)
    for stored in [*confirmed, lost]:
        await record_request(stored.id)
    for stored in confirmed:
        await outbox.mark_sent(outbox.record_id(MessageKind.REQUEST, stored.id))
    await make_overdue()

    assert await relay_once(publishers) == 1
    assert await relay_once(publishers) == 0
    publishers.booking_requests.mock.assert_called_once_with({"bookingId": lost.id})
    record = await outbox.get(outbox.record_id(MessageKind.REQUEST, lost.id))
    assert record is not None
    assert record.sent_at is not None
    assert record.due_at is None


async def test_a_request_whose_booking_was_decided_is_settled_without_publishing(
    publishers: Publishers,
) -> None:
    decided = await booking(0, BookingStatus.CONFIRMED)
    await record_request(decided.id)  # published, but the mark was lost
    await make_overdue()

    assert await relay_once(publishers) == 0
    publishers.booking_requests.mock.assert_not_called()
    record = await outbox.get(outbox.record_id(MessageKind.REQUEST, decided.id))
    assert record is not None
    assert record.sent_at is not None, "the relay would come back to it"


async def test_a_request_never_stored_as_a_booking_is_dropped_and_never_published(
    publishers: Publishers,
) -> None:
    await record_request("never-stored")  # the API died before storing the booking
    await make_overdue()
    assert await relay_once(publishers) == 0
    assert await outbox.get("request:never-stored") is not None, "dropped at the first sight"

    await make_overdue()
    assert await relay_once(publishers) == 0
    assert await outbox.get("request:never-stored") is None
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
    pending = [await booking(n) for n in range(20)]
    for stored in pending:
        await record_request(stored.id)
    await make_overdue()

    sent = await asyncio.gather(*(relay_once(publishers) for _ in range(3)))

    assert sum(sent) == 20
    published = [c.args[0]["bookingId"] for c in publishers.booking_requests.mock.call_args_list]
    assert sorted(published) == sorted(b.id for b in pending)
