"""Booking worker: confirms or rejects each booking request.

Run alone with ``faststream run clinic.handlers.booking:app``.
"""

from typing import Annotated

from faststream import AckPolicy, Depends
from faststream.rabbit import RabbitRouter

from clinic.domain.announcements import announce_decision
from clinic.domain.confirmation import ClinicConfirmation, clinic_confirmation
from clinic.domain.decisions import decide, give_up
from clinic.domain.moves import decide_move
from clinic.domain.reminders import schedule_reminder
from clinic.handlers.app import worker_app
from clinic.handlers.context import LoopContext, Message
from clinic.messages import BookAppointment, BookingStatus
from clinic.messaging.broker import Publishers, worker_channel
from clinic.messaging.retries import NeverSucceeds, delivered_before, is_last_attempt
from clinic.messaging.topology import BOOKING_REQUESTS
from clinic.store import bookings

Confirmation = Annotated[ClinicConfirmation, Depends(clinic_confirmation)]
Publish = Annotated[Publishers, LoopContext("publishers")]


async def process_booking(
    command: BookAppointment, message: Message, clinic: Confirmation, publishers: Publish
) -> None:
    """Decide one booking request, or a move of a booking, at most once, and announce
    the outcome."""
    try:
        booking = await bookings.get(command.booking_id)
        if booking is None:
            raise NeverSucceeds(f"unknown booking {command.booking_id}")
        undecided = booking.status is BookingStatus.PENDING or booking.pending_move is not None
        if booking.status is BookingStatus.PENDING:
            await clinic.review(booking)
            booking = await decide(booking)
        elif booking.pending_move is not None:
            await clinic.review(booking)
            booking = await decide_move(booking)
        # Recorded and announced before the ack: a crash redelivers the request, which
        # records the reminder (once: its id is taken) and announces the decision. A copy
        # of a request whose delivery decided and announced changes nothing.
        if booking.status is not BookingStatus.PENDING and (
            undecided or delivered_before(message, BOOKING_REQUESTS.name)
        ):
            await schedule_reminder(booking)
            await announce_decision(publishers, booking)
    except NeverSucceeds:
        raise
    except Exception:
        if is_last_attempt(message.headers, BOOKING_REQUESTS.name):
            await give_up(publishers, command.booking_id)
        raise


def booking_router() -> RabbitRouter:
    """The booking worker's router: ``process_booking`` on ``booking_requests``."""
    router = RabbitRouter()
    router.subscriber(
        BOOKING_REQUESTS,
        channel=worker_channel(),
        # Acknowledged only after the decision is stored and announced; a failure
        # rejects it into booking_retry.
        ack_policy=AckPolicy.REJECT_ON_ERROR,
        title="booking_requests:consume",
        description=(
            "Simulates the clinic's confirmation (a random delay), then confirms the booking "
            "or rejects it with a reason, stores the outcome, schedules the reminder of a "
            "confirmed appointment, and announces the outcome on booking_notifications. "
            "Failures are retried through booking_retry."
        ),
    )(process_booking)
    return router


app = worker_app("clinic booking worker", booking_router(), outbox_relay=True)
