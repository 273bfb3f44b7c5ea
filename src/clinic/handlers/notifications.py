"""Notification worker: emails the patient about every booking status change.

Run alone with ``faststream run clinic.handlers.notifications:app``.
"""

from typing import Annotated

from faststream import AckPolicy, Depends

from clinic.emails import EmailSender, compose_email, default_email_sender
from clinic.handlers.runtime import worker_app
from clinic.messages import BookingStatusChanged
from clinic.topology import EMAIL_NOTIFICATIONS, NOTIFICATIONS_EXCHANGE, broker, worker_channel

Sender = Annotated[EmailSender, Depends(default_email_sender)]


@broker.subscriber(
    EMAIL_NOTIFICATIONS,
    NOTIFICATIONS_EXCHANGE,
    channel=worker_channel,
    ack_policy=AckPolicy.REJECT_ON_ERROR,
    title="email_notifications:consume",
    description=(
        "Emails the patient the booking's new status and appointment time. "
        "Failed sends are retried through email_retry."
    ),
)
async def email_patient(event: BookingStatusChanged, sender: Sender) -> None:
    """Tell the patient, by email, what happened to their booking."""
    await sender.send(compose_email(event))


app = worker_app("clinic notification worker")
