"""The patient's key to their booking: a secret manage token.

``POST /book`` answers with the token, and the patient's emails carry it in their
manage link. The clinic stores only the token's SHA-256 digest, so a copy of the
database opens no booking.

With ``CLINIC_MANAGE_TOKEN_KEY`` set, a booking's token is an HMAC of its id under
that key: the notification worker can put the same token in every email without
the clinic keeping it, and a request repeated with its Idempotency-Key gets the
same token back. Without the key, the token is random, given out once, and
emails carry no link.

A token opens its booking until the appointment begins; after that it opens
nothing, like a wrong one.
"""

import base64
import hashlib
import hmac
import secrets

from clinic.clock import utcnow
from clinic.settings import settings
from clinic.store.documents import Booking


def derived_token(booking_id: str) -> str | None:
    """The booking's token under ``CLINIC_MANAGE_TOKEN_KEY``; None when no key is set."""
    if not settings.manage_token_key:
        return None
    mac = hmac.new(settings.manage_token_key.encode(), booking_id.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def new_manage_token(booking_id: str) -> tuple[str, str]:
    """The booking's token, and the digest to store in its place."""
    token = derived_token(booking_id) or secrets.token_urlsafe(32)
    return token, digest(token)


def digest(token: str) -> str:
    """What the clinic stores of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def opens(booking: Booking, token: str) -> bool:
    """Whether ``token`` is this booking's manage token (compared in constant time) and the
    appointment is still to come."""
    stored = booking.manage_token_digest
    # The derived token too: after the key changed, the emails' links carry that one.
    derived = derived_token(booking.id)
    matches = (stored is not None and hmac.compare_digest(stored, digest(token))) or (
        derived is not None and hmac.compare_digest(derived, token)
    )
    return matches and booking.date > utcnow()


def manage_link(booking_id: str) -> str | None:
    """The link in the patient's emails that opens the booking; None without a key.

    The token travels in the fragment, which browsers never send to a server, so
    it reaches no proxy's or server's access log: the page reads it and sends it as
    ``Authorization: Bearer``.
    """
    token = derived_token(booking_id)
    return None if token is None else f"{settings.public_url}/manage/{booking_id}#{token}"
