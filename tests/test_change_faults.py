"""Changes after the booking survive a crash of the booking worker: a reminder, and a
move the patient asked for, each reach the patient exactly once.

Real processes on the real broker and database. For the reminder, the booking
workers' outbox relay runs a month ahead (``FAULT_CLOCK_AHEAD``), so the reminder of
an appointment a month away falls due now.
"""

import json
from datetime import timedelta

import httpx
import pytest

from clinic.clock import utcnow
from clinic.domain.manage_tokens import derived_token
from clinic.messages import BookingStatus
from clinic.store import outbox
from clinic.store.documents import Booking, MessageKind, OutboxRecord, SlotClaim
from clinic.store.slots import slot_key
from tests.integration import wait_for
from tests.stack import Stack, log_count, wait_until_terminal

pytestmark = [pytest.mark.faults, pytest.mark.timeout(180), pytest.mark.usefixtures("clean_db")]


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


def subjects(stack: Stack) -> list[str]:
    """The subject of each email sent, up to its colon, in order."""
    lines = stack.mailbox.read_text().splitlines()
    return [json.loads(line)["subject"].split(":")[0] for line in lines]


async def test_a_worker_killed_after_moving_an_appointment_before_announcing_it(
    stack: Stack,
) -> None:
    stack.api()
    stack.notification_worker()
    # Its second announcement is the move's: it hangs there, the move stored.
    first = stack.booking_worker(
        "booking-1", FAULT_CRASH_POINT="before_status_publish", FAULT_CRASH_AFTER="2"
    )
    await stack.wait_until_ready()
    created = await stack.book()
    [booking] = await wait_until_terminal(created)
    await stack.wait_for_emails(created)
    token = derived_token(booking.id)
    new_time = booking.date + timedelta(minutes=30)
    async with httpx.AsyncClient(base_url=stack.base_url) as client:
        asked = await client.post(
            f"/booking/{booking.id}/reschedule",
            json={"date": new_time.isoformat()},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert asked.status_code == 202, asked.text

    assert await stack.wait_for_marker("before_status_publish") == booking.id
    moved = await Booking.get(booking.id)
    assert moved is not None
    assert moved.date == new_time  # moved and stored, not yet announced
    first.kill()
    stack.booking_worker("booking-2")

    async def both_emails() -> bool:
        return len(subjects(stack)) >= 2

    await wait_for(both_emails, within=30)
    await stack.wait_until_settled()
    assert subjects(stack) == ["Su cita está confirmada", "Su cita ha cambiado"]
    claims = await SlotClaim.find_all().to_list()
    assert [(c.id, c.booking_id) for c in claims] == [
        (slot_key(moved.doctor_id or "", new_time), booking.id)
    ]
    again = await Booking.get(booking.id)
    assert again is not None
    assert again.revision == moved.revision, "the move was decided a second time"
