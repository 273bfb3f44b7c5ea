"""One email per booking status change, however often the event is delivered.

Before sending, the notification worker claims ``<booking id>:<status>`` in
MongoDB; the unique ``_id`` lets exactly one delivery win. The claim is marked
sent once the email left, so a redelivery (after a crash before the ack, or a
duplicated event) finds it sent and sends nothing. A claim whose send never
finished (the worker died mid-send) is taken over once ``CLINIC_EMAIL_SEND_TIMEOUT``
has passed, so the email is retried, not forgotten.
"""

import logging
from datetime import timedelta

from pymongo import ReturnDocument

from clinic.batching import Batched, inserts_of
from clinic.messages import BookingStatusChanged
from clinic.models import EmailClaim, utcnow
from clinic.settings import settings

log = logging.getLogger("clinic.email_claims")

_claim_inserts = inserts_of(EmailClaim)


class SendInProgress(Exception):  # noqa: N818 - it names the situation, not an error kind
    """Another delivery of the same event is sending this email right now; retry later."""


def claim_id(event: BookingStatusChanged) -> str:
    """The key of the one email a status change deserves."""
    return f"{event.booking_id}:{event.status.value}"


async def claim_email(event: BookingStatusChanged) -> EmailClaim | None:
    """Claim the right to send ``event``'s email; None if it was sent already.

    Raises ``SendInProgress`` while another worker's send is still within its
    timeout; after that the claim is stale and taken over here.
    """
    claim = EmailClaim(id=claim_id(event), booking_id=event.booking_id, status=event.status)
    if await _claim_inserts.run(claim):
        return claim
    now = utcnow()
    stale = now - timedelta(seconds=settings.email_send_timeout)
    raw = await EmailClaim.get_pymongo_collection().find_one_and_update(
        {"_id": claim.id, "sent": False, "claimed_at": {"$lt": stale}},
        {"$set": {"claimed_at": now}, "$inc": {"attempts": 1}},
        return_document=ReturnDocument.AFTER,
    )
    if raw is not None:
        log.warning(
            "retrying an email whose send never finished", extra={"booking_id": event.booking_id}
        )
        taken_over: EmailClaim = EmailClaim.model_validate(raw)
        return taken_over
    existing = await EmailClaim.get(claim.id)
    if existing is not None and existing.sent:
        return None
    raise SendInProgress(f"email {claim.id} is being sent by another delivery")


async def mark_sent(claim: EmailClaim) -> None:
    """Record that the claimed email left, so no later delivery sends it again."""
    await _sent_marks.run(claim.id)


async def _mark_all_sent(claim_ids: list[str]) -> list[BaseException | None]:
    await EmailClaim.get_pymongo_collection().update_many(
        {"_id": {"$in": claim_ids}}, {"$set": {"sent": True, "sent_at": utcnow()}}
    )
    return [None] * len(claim_ids)


_sent_marks: Batched[str, None] = Batched(_mark_all_sent)


async def release(claim: EmailClaim) -> None:
    """Give the claim back after a failed send, so the retry can send at once."""
    # Only while it is still ours: a takeover changed claimed_at.
    await EmailClaim.get_pymongo_collection().delete_one(
        {"_id": claim.id, "sent": False, "claimed_at": claim.claimed_at}
    )
