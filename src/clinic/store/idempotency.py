"""``Idempotency-Key``: a retried or double-clicked booking request books once.

The first request with a key claims it in MongoDB (unique ``_id``), with a
fingerprint of its body and the id of the booking it creates. A later request
with the same key and the same body gets that booking back; with another body
it is refused. Keys are forgotten after ``CLINIC_IDEMPOTENCY_TTL`` seconds.
"""

from datetime import timedelta

from pymongo.errors import DuplicateKeyError

from clinic.clock import utcnow
from clinic.settings import settings
from clinic.store.documents import IdempotencyKey


class KeyReused(Exception):  # noqa: N818 - it names the situation, not an error kind
    """The key was used before for a different request."""


async def claim_key(key: str, fingerprint: str, booking_id: str) -> str | None:
    """Claim ``key`` for the booking about to be created, with its request's ``fingerprint``.

    None once claimed. Returns the id of the booking the key created before, for
    the same request.
    Raises ``KeyReused`` when the key came with another request.
    """
    now = utcnow()
    claim = IdempotencyKey(
        id=key,
        request_hash=fingerprint,
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


async def release_key(key: str) -> None:
    """Forget ``key``: the request that claimed it was refused, and stored nothing."""
    await IdempotencyKey.find(IdempotencyKey.id == key).delete()
