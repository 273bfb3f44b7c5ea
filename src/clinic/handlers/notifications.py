"""Notification worker: emails the patient about every booking status change.

Run alone with ``faststream run clinic.handlers.notifications:app``.
"""

import asyncio
import logging
from typing import Annotated

from faststream import AckPolicy, Depends

from clinic.email_claims import claim_email, mark_sent, release
from clinic.emails import EmailSender, compose_email, default_email_sender
from clinic.handlers.runtime import worker_app
from clinic.messages import BookingStatusChanged
from clinic.settings import settings
from clinic.topology import EMAIL_NOTIFICATIONS, NOTIFICATIONS_EXCHANGE, broker, worker_channel

log = logging.getLogger("clinic.notifications")

Sender = Annotated[EmailSender, Depends(default_email_sender)]


@broker.subscriber(
    EMAIL_NOTIFICATIONS,
    NOTIFICATIONS_EXCHANGE,
    channel=worker_channel,
    ack_policy=AckPolicy.REJECT_ON_ERROR,
    title="email_notifications:consume",
    description=(
        "Emails the patient the booking's new status and appointment time, once per "
        "status: sends are claimed in MongoDB first. Failed sends are retried through "
        "email_retry."
    ),
)
async def email_patient(event: BookingStatusChanged, sender: Sender) -> None:
    """Tell the patient, by email, what happened to their booking: once, not twice."""
    claim = await claim_email(event)
    if claim is None:
        log.info("email already sent; duplicate ignored", extra={"booking_id": event.booking_id})
        return
    try:
        async with asyncio.timeout(settings.email_send_timeout):
            await sender.send(compose_email(event))
    except Exception:
        # The sender says it was not delivered (or it timed out): let the retry send it.
        await release(claim)
        raise
    await mark_sent(claim)


app = worker_app("clinic notification worker")
