"""What the clinic stores in MongoDB, with an index for every query the code makes."""

from datetime import UTC, datetime
from typing import ClassVar
from uuid import uuid4

from beanie import Document
from pydantic import Field
from pymongo import DESCENDING, IndexModel

from clinic.messages import BookingStatus, RejectionCode


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (MongoDB keeps milliseconds)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def new_booking_id() -> str:
    """A random UUID: the patient's unguessable key to their booking."""
    return str(uuid4())


class Booking(Document):
    """A patient's appointment request and where it stands."""

    id: str = Field(default_factory=new_booking_id)  # type: ignore[assignment]
    patient_name: str
    patient_email: str
    date: datetime
    status: BookingStatus = BookingStatus.PENDING
    reason: str | None = None
    reason_code: RejectionCode | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # Outbox flags: whether the request reached the broker, and which status the
    # patient's notification was published for, so a gap can be found and re-driven.
    request_published: bool = False
    publish_error: str | None = None
    notified_status: BookingStatus | None = None

    class Settings:
        name = "bookings"
        indexes: ClassVar[list[IndexModel]] = [
            # GET /bookings: newest first, ties broken by id for a stable order.
            IndexModel([("created_at", DESCENDING), ("_id", DESCENDING)], name="newest_first"),
        ]


class SlotClaim(Document):
    """A confirmed appointment time. Its id is the slot, so a time is held at most once."""

    id: str  # type: ignore[assignment]
    booking_id: str
    claimed_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "slot_claims"


DOCUMENT_MODELS: list[type[Document]] = [Booking, SlotClaim]
