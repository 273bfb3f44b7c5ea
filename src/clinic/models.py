"""What the clinic stores in MongoDB, with an index for every query the code makes."""

from datetime import UTC, datetime, timedelta
from typing import ClassVar
from uuid import uuid4

from beanie import Document
from pydantic import Field
from pymongo import ASCENDING, DESCENDING, IndexModel

from clinic.messages import BookingStatus, RejectionCode
from clinic.settings import settings


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (MongoDB keeps milliseconds)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def new_booking_id() -> str:
    """A random UUID: the patient's unguessable key to their booking."""
    return str(uuid4())


def outbox_deadline() -> datetime:
    """When the outbox relay may publish a request that was not confirmed published by then."""
    return utcnow() + timedelta(seconds=settings.outbox_grace)


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
    # Outbox: whether the broker confirmed the request, and when the relay may
    # publish it if not; and which status the patient's notification was
    # published for. A crash between two steps leaves a gap that can be found.
    request_published: bool = False
    publish_after: datetime = Field(default_factory=outbox_deadline)
    publish_error: str | None = None
    notified_status: BookingStatus | None = None

    class Settings:
        name = "bookings"
        indexes: ClassVar[list[IndexModel]] = [
            # GET /bookings: newest first, ties broken by id for a stable order.
            IndexModel([("created_at", DESCENDING), ("_id", DESCENDING)], name="newest_first"),
            # The outbox relay: unpublished requests, oldest deadline first.
            IndexModel(
                [("request_published", ASCENDING), ("publish_after", ASCENDING)], name="outbox"
            ),
        ]


class SlotClaim(Document):
    """A confirmed appointment time. Its id is the slot, so a time is held at most once."""

    id: str  # type: ignore[assignment]
    booking_id: str
    claimed_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "slot_claims"


class EmailClaim(Document):
    """One email per booking status: claimed before it is sent, marked once it was.

    Its id is ``<booking id>:<status>``; the unique ``_id`` index lets one worker
    claim a send, so a redelivered or duplicated event never emails twice.
    """

    id: str  # type: ignore[assignment]
    booking_id: str
    status: BookingStatus
    sent: bool = False
    claimed_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    attempts: int = 1

    class Settings:
        name = "email_claims"


DOCUMENT_MODELS: list[type[Document]] = [Booking, SlotClaim, EmailClaim]
