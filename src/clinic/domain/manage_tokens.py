"""The patient's key to their booking: a secret manage token, given out once.

``POST /book`` answers with the token; the clinic keeps only its SHA-256 digest.
The token is 256 random bits, so a fast digest is enough: there is nothing to
guess. Whoever holds it sees the patient's details and may cancel; without it,
the booking id shows only the status.
"""

import hashlib
import hmac
import secrets

from clinic.store.documents import Booking


def new_manage_token() -> tuple[str, str]:
    """A fresh token, and the digest to store in its place."""
    token = secrets.token_urlsafe(32)
    return token, digest(token)


def digest(token: str) -> str:
    """What the clinic stores of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def opens(booking: Booking, token: str) -> bool:
    """Whether ``token`` is this booking's manage token (compared in constant time)."""
    stored = booking.manage_token_digest
    return stored is not None and hmac.compare_digest(stored, digest(token))
