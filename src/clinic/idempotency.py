"""``Idempotency-Key``: a retried or double-clicked booking request books once.

The first request with a key claims it in MongoDB (unique ``_id``), with a
fingerprint of its body and the id of the booking it creates. A later request
with the same key and the same body gets that booking back; with another body
it is refused. Keys are forgotten after ``CLINIC_IDEMPOTENCY_TTL`` seconds.
"""

import hashlib
from datetime import timedelta

from pymongo.errors import DuplicateKeyError

from clinic.models import IdempotencyKey, utcnow
from clinic.schemas import BookingRequest
from clinic.settings import settings


class KeyReused(Exception):  # noqa: N818 - it names the situation, not an error kind
    """The key was used before for a different request."""


def fingerprint(request: BookingRequest) -> str:
    """A digest of the request as validated (so spacing or key order do not matter)."""
    return hashlib.sha256(request.model_dump_json(by_alias=True).encode()).hexdigest()


async def claim_key(key: str, request: BookingRequest, booking_id: str) -> str | None:
    """Claim ``key`` for the booking about to be created; None if claimed.

    Returns the id of the booking the key created before, for the same request.
    Raises ``KeyReused`` when the key came with another request.
    """
    now = utcnow()
    claim = IdempotencyKey(
        id=key,
        request_hash=fingerprint(request),
        booking_id=booking_id,
        expires_at=now + timedelta(seconds=settings.idempotency_ttl),
    )
    for _ in range(2):
        try:
            await claim.insert()
        except DuplicateKeyError:
            earlier = await IdempotencyKey.get(key)
            if earlier is None or earlier.expires_at <= now:
                # Expired but not yet removed by MongoDB: it no longer counts.
                await IdempotencyKey.find(
                    IdempotencyKey.id == key, IdempotencyKey.expires_at <= now
                ).delete()
                continue
            if earlier.request_hash != claim.request_hash:
                raise KeyReused(key) from None
            return earlier.booking_id
        return None
    raise KeyReused(key)  # claimed by a concurrent request in between
