"""Booking worker: confirms or rejects each booking request.

Run alone with ``faststream run clinic.handlers.booking:app``.
"""

from typing import Annotated

from faststream import AckPolicy, Depends
from faststream.rabbit import RabbitMessage

from clinic.announcements import announce
from clinic.booking import decide, find_booking, give_up
from clinic.confirmation import ClinicConfirmation, clinic_confirmation
from clinic.handlers.runtime import worker_app
from clinic.messages import BookAppointment, BookingStatus
from clinic.retries import NeverSucceeds, is_last_attempt
from clinic.topology import BOOKING_REQUESTS, broker, worker_channel

Confirmation = Annotated[ClinicConfirmation, Depends(clinic_confirmation)]


@broker.subscriber(
    BOOKING_REQUESTS,
    channel=worker_channel,
    # Acknowledged only after the decision is stored and announced; a failure
    # rejects it into booking_retry.
    ack_policy=AckPolicy.REJECT_ON_ERROR,
    title="booking_requests:consume",
    description=(
        "Simulates the clinic's confirmation (a random delay), then confirms the booking "
        "or rejects it with a reason, stores the outcome and announces it on "
        "booking_notifications. Failures are retried through booking_retry."
    ),
)
async def process_booking(
    command: BookAppointment, message: RabbitMessage, clinic: Confirmation
) -> None:
    """Decide one booking request, at most once, and announce the outcome."""
    try:
        booking = await find_booking.run(command.booking_id)
        if booking is None:
            raise NeverSucceeds(f"unknown booking {command.booking_id}")
        if booking.status is BookingStatus.PENDING:
            await clinic.review(booking)
            booking = await decide(booking)
        # A redelivery after a crash finds the decision made but perhaps unannounced.
        if booking.status is not BookingStatus.PENDING:
            await announce(booking)
    except NeverSucceeds:
        raise
    except Exception:
        if is_last_attempt(message.headers, BOOKING_REQUESTS.name):
            await give_up(command.booking_id)
        raise


app = worker_app("clinic booking worker", outbox_relay=True)
