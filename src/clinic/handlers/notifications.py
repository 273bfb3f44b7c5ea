"""Notification worker: emails the patient about every booking status change.

Run alone with ``faststream run clinic.handlers.notifications:app``.
"""

from typing import Annotated

from faststream import AckPolicy, Depends
from faststream.rabbit import RabbitRouter

from clinic.domain.emails import default_email_sender, email_once
from clinic.handlers.app import worker_app
from clinic.mail import EmailRefused, EmailSender
from clinic.messages import BookingEvent
from clinic.messaging.broker import worker_channel
from clinic.messaging.retries import NeverSucceeds
from clinic.messaging.topology import EMAIL_NOTIFICATIONS, NOTIFICATIONS

Sender = Annotated[EmailSender, Depends(default_email_sender)]


async def email_patient(event: BookingEvent, sender: Sender) -> None:
    """Tell the patient, by email, what happened to their booking, or remind them of the
    appointment: once, not twice.

    An email the mail server refuses for good is parked at once, with the server's
    reply code, for staff to look into; any other failure is retried.
    """
    try:
        await email_once(event, sender)
    except EmailRefused as refused:
        raise NeverSucceeds(str(refused)) from None


def notifications_router() -> RabbitRouter:
    """The notification worker's router: ``email_patient`` on ``email_notifications``."""
    router = RabbitRouter()
    router.subscriber(
        EMAIL_NOTIFICATIONS,
        NOTIFICATIONS,
        channel=worker_channel(),
        ack_policy=AckPolicy.REJECT_ON_ERROR,
        title="email_notifications:consume",
        description=(
            "Emails the patient the booking's new status and appointment time, once per "
            "status, and each reminder that is due, unless the booking changed since: each "
            "email is recorded in the outbox first. Failed sends are retried "
            "through email_retry; an email the mail server refuses for good is parked."
        ),
    )(email_patient)
    return router


app = worker_app("clinic notification worker", notifications_router())
