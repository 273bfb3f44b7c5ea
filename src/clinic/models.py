"""What the clinic stores in MongoDB, with an index for every query the code makes."""

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, ClassVar
from uuid import uuid4

from beanie import Document
from pydantic import AfterValidator, BaseModel, Field, StringConstraints, model_validator
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


DoctorId = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", min_length=1, max_length=63)
]
"""A doctor's id: lowercase letters, digits and dashes (e.g. ``dra-garcia``)."""

ClockTime = Annotated[str, StringConstraints(pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$")]
"""A local time of day, ``HH:MM`` (``24:00`` closes a day)."""


def minutes_of(clock: str) -> int:
    """Minutes since midnight of an ``HH:MM`` time."""
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _opens_before_it_closes(shift: tuple[str, str]) -> tuple[str, str]:
    if minutes_of(shift[0]) >= minutes_of(shift[1]):
        raise ValueError(f"a shift must end after it starts: {shift[0]}-{shift[1]}")
    return shift


Shift = Annotated[tuple[ClockTime, ClockTime], AfterValidator(_opens_before_it_closes)]
"""Opening and closing time, local to the clinic, e.g. ``("09:00", "14:00")``."""


class Weekday(StrEnum):
    """Days of the week, as keys of a doctor's working hours."""

    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


WEEKDAYS = list(Weekday)
"""Monday first, as ``datetime.weekday()`` counts."""


ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
"""A name or title: trimmed, 1 to 200 characters."""


class DoctorProfile(BaseModel):
    """What the clinic knows about a doctor, besides the id."""

    name: ShortText
    specialty: ShortText
    working_hours: dict[Weekday, list[Shift]] = Field(
        description="Shifts per weekday, in the clinic's local time."
    )
    slot_minutes: int = Field(30, ge=1, le=480, description="Length of one appointment.")
    active: bool = True


class Doctor(Document, DoctorProfile):
    """A doctor patients can book; deactivated doctors take no new bookings."""

    id: DoctorId  # type: ignore[assignment]

    class Settings:
        name = "doctors"


RELAY_UNANNOUNCED: dict[str, object] = {"announce_after": {"$type": "date"}}
"""Status changes the outbox relay is to announce if nobody has by ``announce_after``."""
RELAY_UNPUBLISHED: dict[str, object] = {"request_published": False}
"""Requests the outbox relay is to publish by ``publish_after`` unless recorded published."""

OBSOLETE_INDEXES = {
    "bookings": ["newest_first", "doctor_schedule", "unannounced", "outbox"],
    "slot_claims": ["by_booking"],
}
"""Indexes earlier versions created: the API drops them, since every index slows every write."""


class Booking(Document):
    """A patient's appointment request and where it stands."""

    id: str = Field(default_factory=new_booking_id)  # type: ignore[assignment]
    patient_name: str
    patient_email: str
    date: datetime
    doctor_id: str | None = None
    # The doctor's name when the booking was placed, for the patient's emails.
    doctor_name: str | None = None
    status: BookingStatus = BookingStatus.PENDING
    # Which decision won, when workers raced: decisions are written in batches,
    # and a batch's result only counts its winners.
    decision_id: str | None = None
    reason: str | None = None
    reason_code: RejectionCode | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # Outbox: whether the request is known to be published (the API's confirmed
    # publishes are recorded as PublishedMessage instead), and when the relay may
    # publish it if not; and which status the patient's notification was
    # published for. A crash between two steps leaves a gap that can be found.
    request_published: bool = False
    publish_after: datetime = Field(default_factory=outbox_deadline)
    publish_error: str | None = None
    notified_status: BookingStatus | None = None
    # Set with a status change no request message will announce (a cancellation,
    # a decision whose announcement kept failing), cleared once it is announced:
    # the outbox relay announces what is still unannounced after a grace period.
    announce_after: datetime | None = None
    # The listing order, newest first: creation time, then id to break ties. One
    # field, so a page boundary is a single range bound on an index.
    list_key: str = ""

    @model_validator(mode="after")
    def _keyed_for_listing(self) -> "Booking":
        if not self.list_key:
            self.list_key = f"{self.created_at.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%f}|{self.id}"
        return self

    class Settings:
        name = "bookings"
        indexes: ClassVar[list[IndexModel]] = [
            # GET /bookings, newest first, unfiltered or by one filter (see clinic.listing).
            IndexModel([("list_key", DESCENDING)], name="list_all"),
            IndexModel([("status", ASCENDING), ("list_key", DESCENDING)], name="list_by_status"),
            IndexModel(
                [("patient_email", ASCENDING), ("list_key", DESCENDING)], name="list_by_patient"
            ),
            IndexModel([("date", ASCENDING), ("list_key", DESCENDING)], name="list_by_date"),
            # A doctor's bookings, listed. (Availability reads the day through list_by_date.)
            IndexModel([("doctor_id", ASCENDING), ("list_key", DESCENDING)], name="list_by_doctor"),
            # The outbox relay. Partial: a booking is only in them while the relay may
            # have work for it, and the database skips them on every other write.
            IndexModel(
                [("announce_after", ASCENDING)],
                name="relay_unannounced",
                partialFilterExpression=RELAY_UNANNOUNCED,
            ),
            IndexModel(
                [("publish_after", ASCENDING)],
                name="relay_unpublished",
                partialFilterExpression=RELAY_UNPUBLISHED,
            ),
        ]


MARK_TTL = 7 * 24 * 3600
"""Seconds a record of a publish is kept: a duplicate arriving later is published once more."""


class PublishedMessage(Document):
    """A message the broker confirmed, by its message id: the outbox does not publish it again.

    A booking request's message id is the booking id; a status change's is
    ``<booking id>:<status>``. Kept apart from the booking on purpose: rewriting a
    booking rewrites all its index entries, which cost the database twice what
    inserting this record does.
    """

    id: str  # type: ignore[assignment]  # the message id
    published_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "published_messages"
        indexes: ClassVar[list[IndexModel]] = [
            IndexModel([("published_at", ASCENDING)], name="expiry", expireAfterSeconds=MARK_TTL),
        ]


class SlotClaim(Document):
    """A doctor's appointment slot, held by one booking.

    Its id is ``<doctor id>|<slot start>``: the unique ``_id`` makes two holders of
    one slot impossible, however the claims race.
    """

    id: str  # type: ignore[assignment]
    doctor_id: str
    start: datetime
    booking_id: str
    claimed_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "slot_claims"
        indexes: ClassVar[list[IndexModel]] = [
            # A booking holds at most one slot; a redelivery finds the one it holds.
            IndexModel([("booking_id", ASCENDING)], name="one_slot_per_booking", unique=True),
            # Availability: a doctor's held slots in a day.
            IndexModel([("doctor_id", ASCENDING), ("start", ASCENDING)], name="by_doctor_time"),
        ]


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


class IdempotencyKey(Document):
    """A client's ``Idempotency-Key``: the booking its first request created."""

    id: str  # type: ignore[assignment]
    request_hash: str
    booking_id: str
    expires_at: datetime

    class Settings:
        name = "idempotency_keys"
        indexes: ClassVar[list[IndexModel]] = [
            # MongoDB removes expired keys by itself (the code ignores them until then).
            IndexModel([("expires_at", ASCENDING)], name="expiry", expireAfterSeconds=0),
        ]


DOCUMENT_MODELS: list[type[Document]] = [
    Doctor,
    Booking,
    PublishedMessage,
    SlotClaim,
    EmailClaim,
    IdempotencyKey,
]
