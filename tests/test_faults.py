"""Nothing lost, nothing doubled: real processes killed at the worst moments.

Each test runs the API and workers as real processes on the real broker and
database, breaks one of them, and checks that every booking ends in exactly
one terminal state and every status change sends exactly one email.
"""

import asyncio

import aio_pika
import httpx
import pytest

from clinic.domain.hand_overs import handed_over
from clinic.messages import BookAppointment, BookingStatus
from clinic.messaging.topology import BOOKING_REQUESTS
from clinic.settings import settings
from clinic.store.documents import Booking, MessageKind, OutboxRecord
from tests.integration import parked_messages
from tests.stack import Stack, log_count, wait_until_terminal

# Above the sum of the waits inside each test, so a wait fails with its own message.
pytestmark = [pytest.mark.faults, pytest.mark.timeout(300), pytest.mark.usefixtures("clean_db")]

SLOW_CONFIRMATION = {"CLINIC_CONFIRM_DELAY_MIN": "3", "CLINIC_CONFIRM_DELAY_MAX": "3"}


async def decided_once(stack: Stack, booking_id: str) -> Booking:
    """The booking, checked to be terminal and emailed exactly once."""
    [booking] = await wait_until_terminal([booking_id])
    await stack.wait_for_emails([booking_id])
    await stack.wait_until_settled()  # past the point where a second email could come
    assert stack.emails()[booking_id] == 1, stack.emails()
    return booking


async def test_booking_worker_killed_during_the_confirmation_delay(stack: Stack) -> None:
    stack.api()
    stack.notification_worker()
    first = stack.booking_worker("booking-1", **SLOW_CONFIRMATION)
    await stack.wait_until_ready()
    [booking_id] = await stack.book()
    await stack.wait_until_held(BOOKING_REQUESTS.name, 1)  # the worker waits for the clinic
    assert (await Booking.get(booking_id)).status is BookingStatus.PENDING  # type: ignore[union-attr]

    first.kill()
    second = stack.booking_worker("booking-2")

    booking = await decided_once(stack, booking_id)
    assert booking.status is BookingStatus.CONFIRMED
    assert log_count(first.log, f"booking {booking_id} confirmed") == 0
    assert log_count(second.log, f"booking {booking_id} confirmed") == 1


async def test_worker_killed_after_storing_the_decision_before_announcing_it(
    stack: Stack,
) -> None:
    stack.api()
    stack.notification_worker()
    first = stack.booking_worker("booking-1", FAULT_CRASH_POINT="before_status_publish")
    await stack.wait_until_ready()
    [booking_id] = await stack.book()

    assert await stack.wait_for_marker("before_status_publish") == booking_id
    stored = await Booking.get(booking_id)
    assert stored is not None
    assert stored.status is BookingStatus.CONFIRMED
    first.kill()
    assert stack.emails()[booking_id] == 0
    stack.booking_worker("booking-2")

    await decided_once(stack, booking_id)
    booking = await Booking.get(booking_id)
    assert booking is not None
    assert booking.updated_at == stored.updated_at, "decided a second time"


async def test_notification_worker_killed_after_sending_before_acking(stack: Stack) -> None:
    stack.api()
    stack.booking_worker()
    first = stack.notification_worker("notifications-1", FAULT_CRASH_POINT="after_handling")
    await stack.wait_until_ready()
    [booking_id] = await stack.book()

    assert await stack.wait_for_marker("after_handling") == booking_id
    assert stack.emails()[booking_id] == 1
    first.kill()
    second = stack.notification_worker("notifications-2")

    deadline = asyncio.get_running_loop().time() + 20
    while stack.queue_depths().get("email_notifications", 0):
        assert asyncio.get_running_loop().time() < deadline, stack.queue_depths()
        await asyncio.sleep(0.2)
    assert log_count(second.log, "email already sent; duplicate ignored") == 1
    assert stack.emails()[booking_id] == 1


async def test_notification_worker_killed_mid_send_retries_the_unfinished_send(
    stack: Stack,
) -> None:
    stack.api()
    stack.booking_worker()
    first = stack.notification_worker("notifications-1", FAULT_CRASH_POINT="mid_send")
    await stack.wait_until_ready()
    [booking_id] = await stack.book()

    assert await stack.wait_for_marker("mid_send") == booking_id
    first.kill()
    stack.notification_worker("notifications-2")

    booking = await decided_once(stack, booking_id)
    [record] = await OutboxRecord.find(
        OutboxRecord.booking_id == booking_id, OutboxRecord.kind == MessageKind.EMAIL
    ).to_list()
    assert record.sent_at is not None
    assert record.attempts == 2
    # Taken over only once the dead worker's send had had its time.
    waited = (record.sent_at - booking.updated_at).total_seconds()
    assert waited >= settings.email_send_timeout


async def test_api_killed_between_storing_and_publishing_the_relay_publishes(
    stack: Stack,
) -> None:
    api = stack.api("uvicorn tests.faulty_api:app", FAULT_CRASH_POINT="before_request_publish")
    stack.booking_worker()
    stack.notification_worker()
    await stack.wait_until_ready()
    [booking_id] = await stack.book()

    assert await stack.wait_for_marker("before_request_publish") == booking_id
    api.kill()
    stored = await Booking.get(booking_id)
    assert stored is not None
    assert stored.request_due_at is not None
    assert not await handed_over(stored.hand_over)

    booking = await decided_once(stack, booking_id)
    assert booking.status is BookingStatus.CONFIRMED
    assert log_count(stack.tmp / "booking.log", "request published by the outbox relay") == 1
    assert (booking.updated_at - booking.created_at).total_seconds() >= settings.outbox_grace


async def test_api_stopped_under_load_hands_over_every_booking_it_stored(stack: Stack) -> None:
    """uvicorn's graceful stop: the requests in progress finish, and so do the hand-overs
    of their requests, which a slow broker holds up; its last mark covers them all, so
    the relay has nothing to send."""
    api = stack.api("uvicorn tests.faulty_api:app", FAULT_SLOW_REQUESTS="0.5")
    await stack.wait_until_ready()
    answers: list[int] = []
    busy = asyncio.Event()

    async def book_until_refused(client: httpx.AsyncClient) -> None:
        while True:
            body = {"patientName": "Ana", "patientEmail": "ana@example.com"}
            try:
                response = await client.post("/book", json=body | {"date": stack.next_date()})
            except httpx.TransportError:  # the API stopped listening
                return
            answers.append(response.status_code)
            if len(answers) >= 300:  # hand-overs in flight all along
                busy.set()

    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as client:
        clients = [asyncio.create_task(book_until_refused(client)) for _ in range(32)]
        await busy.wait()
        await asyncio.to_thread(api.terminate)
        await asyncio.gather(*clients)

    assert set(answers) == {202}, answers
    stored = await Booking.find_all().to_list()
    assert len(stored) >= len(answers)
    not_handed_over = [b.id for b in stored if not await handed_over(b.hand_over)]
    assert not not_handed_over, f"{len(not_handed_over)} of {len(stored)} left to the relay"
    await stack.wait_for_depths({BOOKING_REQUESTS.name: len(stored)}, within=10)


async def test_poison_messages_are_parked_while_good_bookings_flow(
    stack: Stack, rabbit: aio_pika.abc.AbstractChannel
) -> None:
    stack.api()
    booking_worker = stack.booking_worker()
    stack.notification_worker()
    await stack.wait_until_ready()
    for body in (b"{not json", b'{"patient": "no bookingId"}', b'{"bookingId": "ghost"}'):
        await rabbit.default_exchange.publish(
            aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=BOOKING_REQUESTS.name,
        )
    await rabbit.default_exchange.publish(
        aio_pika.Message(b"\xff\xfe not an event", delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
        routing_key="email_notifications",
    )
    [buggy] = await stack.book(name="Bug Trigger")
    good = await stack.book(5)

    for booking in await wait_until_terminal(good, within=20):
        assert booking.status is BookingStatus.CONFIRMED
    [rejected] = await wait_until_terminal([buggy], within=30)
    assert rejected.reason == "processing failed"
    await stack.wait_for_emails([*good, buggy])

    parked = await parked_messages(rabbit)
    reasons = [str(m.headers["x-parked-reason"]) for m in parked]
    assert len(parked) == 5, reasons
    assert sum("gave up after" in r for r in reasons) == 1
    # The kind of error, not its text: a library's text may quote a patient's data.
    assert sum(r.endswith("retries: RuntimeError") for r in reasons) == 1
    attempts = log_count(booking_worker.log, f"[{buggy}] attempt")
    assert attempts == settings.max_retries, "retried more or less than configured"
    assert all(stack.emails()[b] == 1 for b in [*good, buggy])


async def test_duplicate_requests_and_a_twice_replayed_parking_queue(
    stack: Stack, rabbit: aio_pika.abc.AbstractChannel
) -> None:
    stack.api()
    stack.booking_worker("booking-1")
    stack.booking_worker("booking-2")
    stack.notification_worker()
    await stack.wait_until_ready()
    [booking_id] = await stack.book()
    request = BookAppointment(booking_id=booking_id).model_dump_json(by_alias=True).encode()
    for _ in range(2):
        await rabbit.default_exchange.publish(
            aio_pika.Message(
                request, correlation_id=booking_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
            ),
            routing_key=BOOKING_REQUESTS.name,
        )
    booking = await decided_once(stack, booking_id)

    for _ in range(2):
        await rabbit.default_exchange.publish(
            aio_pika.Message(
                request,
                correlation_id=booking_id,
                message_id=booking_id,
                headers={"x-parked-from": BOOKING_REQUESTS.name, "x-parked-reason": "test"},
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key="parked_messages",
        )
        replay = await asyncio.to_thread(stack.clinic, "parked", "replay", "--all")
        assert replay.returncode == 0, replay.stderr

    await stack.wait_until_settled()
    again = await Booking.get(booking_id)
    assert again is not None
    assert again.updated_at == booking.updated_at
    assert stack.emails()[booking_id] == 1
    depths = stack.queue_depths()
    assert depths["booking_requests"] == depths["parked_messages"] == 0, depths


async def test_sigterm_under_load_finishes_in_flight_bookings_and_loses_none(
    stack: Stack,
) -> None:
    stack.api()
    stack.notification_worker()
    graceful = {"CLINIC_GRACEFUL_TIMEOUT": "10", **SLOW_CONFIRMATION}
    first = stack.booking_worker("booking-1", **graceful)
    await stack.wait_until_ready()
    ids = await stack.book(3 * settings.prefetch)
    # The first prefetch bookings are in the confirmation delay.
    await stack.wait_until_held(BOOKING_REQUESTS.name, settings.prefetch)

    took = first.terminate(timeout=30)
    assert took < 10 + 3, f"took {took:.1f}s to stop"
    finished = {b for b in ids if log_count(first.log, f"booking {b} confirmed")}
    assert len(finished) == settings.prefetch, "in-flight bookings were not finished"
    second = stack.booking_worker("booking-2")

    await wait_until_terminal(ids, within=60)
    await stack.wait_for_emails(ids)
    await stack.wait_until_settled()
    for booking_id in ids:
        decisions = log_count(first.log, f"booking {booking_id} confirmed") + log_count(
            second.log, f"booking {booking_id} confirmed"
        )
        assert decisions == 1, booking_id
        assert stack.emails()[booking_id] == 1
