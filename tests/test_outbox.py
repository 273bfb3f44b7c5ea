"""The outbox relay sends what nobody sent, once, and drops what must not be sent."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, cast

import pytest
from faststream.rabbit import TestRabbitBroker
from pymongo import AsyncMongoClient

from clinic.clock import utcnow
from clinic.domain.announcements import record_status
from clinic.domain.decisions import give_up
from clinic.domain.hand_overs import HandOvers, handed_over
from clinic.domain.outbox import relay_once
from clinic.handlers import worker_app
from clinic.messages import BookingStatus
from clinic.messaging.broker import Publishers
from clinic.store import hand_over_marks, outbox
from clinic.store.documents import Booking, MessageKind, OutboxRecord
from tests.conftest import broker_of, publishers_of
from tests.test_database_cost import assert_served_by_indexes, profiled

pytestmark = pytest.mark.usefixtures("clean_db")


@pytest.fixture
async def publishers() -> AsyncIterator[Publishers]:
    """The publishers of a worker app with no handlers, its broker in memory."""
    app = worker_app("relay under test")
    async with TestRabbitBroker(broker_of(app)):
        yield publishers_of(app)


async def booking(
    n: int,
    status: BookingStatus = BookingStatus.PENDING,
    *,
    request_overdue: bool = False,
    ticket: str | None = None,
) -> Booking:
    stored = Booking(
        patient_name=f"Paciente {n}",
        patient_email=f"p{n}@example.com",
        date=utcnow() + timedelta(days=3, minutes=n),
        status=status,
        request_due_at=utcnow() - timedelta(seconds=1) if request_overdue else None,
        hand_over=ticket,
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
    # Still pending past the grace period: three wait in the queue behind others (their
    # API process recorded them handed over), one was never published (the API died, or
    # the broker refused it), and one was stored by a process that recorded nothing.
    for n in range(1, 4):
        await booking(n, request_overdue=True, ticket=f"api-a:{n}")
    lost = await booking(4, request_overdue=True, ticket="api-a:4")
    unrecorded = await booking(5, request_overdue=True, ticket="api-b:1")
    await hand_over_marks.record("api-a", 3)

    assert await relay_once(publishers) == 2
    assert await relay_once(publishers) == 0
    published = publishers.booking_requests.mock.call_args_list
    assert sorted(c.args[0]["bookingId"] for c in published) == sorted([lost.id, unrecorded.id])
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


async def test_a_move_asked_for_while_the_relay_publishes_keeps_its_request_due() -> None:
    lost = await booking(0, request_overdue=True, ticket="api-a:1")  # never reached the broker
    move_due = utcnow() + timedelta(seconds=30)

    class DecidedAndMovedMeanwhile:
        """The relayed request is decided at once, and the patient asks for a move whose
        own hand-over fails: only its due time stands for it."""

        async def request_decision(self, booking_id: str, what: str | None = None) -> None:
            await Booking.get_pymongo_collection().update_one(
                {"_id": booking_id},
                {"$set": {"status": "confirmed", "request_due_at": move_due, "hand_over": None}},
            )

    assert await relay_once(cast(Publishers, DecidedAndMovedMeanwhile())) == 1

    current = await Booking.get(lost.id)
    assert current is not None
    assert current.request_due_at == move_due, "the move's request would never be sent"


class _RefusingBroker:
    """Publishers whose broker refuses every request."""

    async def request_decision(self, booking_id: str, what: str | None = None) -> None:
        raise ConnectionError("the broker refused it")


async def test_a_process_marks_only_the_requests_the_broker_confirmed_in_order(
    publishers: Publishers,
) -> None:
    hand_overs = HandOvers(publishers)
    first, second, third = hand_overs.ticket(), hand_overs.ticket(), hand_overs.ticket()
    for n, ticket in enumerate([first, second, third]):
        await booking(n, request_overdue=True, ticket=ticket)

    await hand_overs.hand_over(first, "b1")
    await hand_overs.hand_over(third, "b3")  # the second is still on its way
    await hand_overs.record_mark()

    assert await handed_over(first)
    assert not await handed_over(second), "a request still on its way would never be sent"
    assert not await handed_over(third)
    await hand_overs.hand_over(second, "b2")
    await hand_overs.record_mark()
    assert await handed_over(third)


async def test_a_failed_hand_over_leaves_the_request_to_the_relay(
    publishers: Publishers,
) -> None:
    hand_overs = HandOvers(publishers)
    refused, later = hand_overs.ticket(), hand_overs.ticket()
    lost = await booking(0, request_overdue=True, ticket=refused)
    waiting = await booking(1, request_overdue=True, ticket=later)

    hand_overs.publishers = cast(Publishers, _RefusingBroker())
    await hand_overs.hand_over(refused, lost.id)
    hand_overs.publishers = publishers
    await hand_overs.hand_over(later, waiting.id)
    await hand_overs.record_mark()
    publishers.booking_requests.mock.reset_mock()

    # The mark passed both: the refused one's booking no longer names its ticket.
    assert await handed_over(later)
    assert await relay_once(publishers) == 1
    publishers.booking_requests.mock.assert_called_once_with({"bookingId": lost.id})


def _commands(entries: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """Profiled commands, by name and collection: ``("find", "bookings")``."""
    return Counter((next(iter(e["command"])), e["ns"].split(".", 1)[-1]) for e in entries)


async def test_a_relay_scan_costs_a_few_commands_however_long_the_queue(
    publishers: Publishers, clean_db: AsyncMongoClient[dict[str, object]]
) -> None:
    # A rush: 50 requests overdue as they wait in the queue behind others (their API
    # process recorded them handed over), and 50 confirmed bookings' reminders, days ahead.
    for n in range(1, 51):
        await booking(n, request_overdue=True, ticket=f"api-a:{n}")
        days_ahead = utcnow() + timedelta(days=2, minutes=n)
        assert await outbox.add(outbox.reminder_record(f"b{n}", 1, days_ahead))
    await hand_over_marks.record("api-a", 50)

    async with profiled(clean_db) as entries:
        assert await relay_once(publishers) == 0

    # Picking them one at a time (findAndModify) cost SecantusDB a scan of the
    # collection for each, and a read of the mark; so a long queue made every scan slower.
    assert _commands(entries) == Counter(
        {
            ("find", "bookings"): 1,  # the due requests
            ("find", "hand_over_marks"): 1,  # their processes' marks
            ("update", "bookings"): 1,  # all 50 settled
            ("find", "outbox"): 2,  # the due status changes, the due reminders
        }
    )
    assert await Booking.find({"request_due_at": {"$ne": None}}).count() == 0
    await assert_served_by_indexes(clean_db, entries)
