"""What the clinic stores in MongoDB, with an index for every query the code makes."""

from datetime import UTC, datetime
from enum import StrEnum
from typing import ClassVar
from uuid import uuid4

from beanie import Document
from pydantic import BaseModel, Field, model_validator
from pymongo import ASCENDING, DESCENDING, IndexModel

from clinic.clock import utcnow
from clinic.messages import BookingStatus, Language, RejectionCode
from clinic.store.doctor_profile import DoctorId, DoctorProfile
from clinic.store.email_keys import email_key


def new_booking_id() -> str:
    """A random UUID. It names the booking; the manage token, not the id, opens it."""
    return str(uuid4())


class Doctor(Document, DoctorProfile):
    """A doctor patients can book; deactivated doctors take no new bookings."""

    id: DoctorId  # type: ignore[assignment]

    class Settings:
        name = "doctors"


PATIENT_BOOKINGS = "patient_bookings"
"""The name of the index of a patient's bookings, by their email key."""
DUE_SINCE = datetime(1970, 1, 1, tzinfo=UTC)
"""Earlier than any due time. The outbox's partial indexes hold the due times from it
on, and every read of them names it as a bound, so that a database can tell the index
serves the read: SecantusDB proves that only for a range, never for ``$type``, and
otherwise scans (or, told which index, walks all of it)."""


def due_by(moment: datetime | None = None) -> dict[str, datetime]:
    """The condition of a due time set, and reached by ``moment`` if one is given."""
    return {"$gte": DUE_SINCE} if moment is None else {"$gte": DUE_SINCE, "$lte": moment}


class PendingMove(BaseModel):
    """A patient's request to move a confirmed appointment, waiting for the booking workers."""

    date: datetime
    doctor_id: str
    requested_at: datetime = Field(default_factory=utcnow)


class MoveOutcome(BaseModel):
    """How the booking's last move request ended, and the revision that decision made."""

    revision: int
    moved: bool
    requested_date: datetime
    # Moved: where the appointment was before. Refused: why not.
    previous_date: datetime | None = None
    reason_code: RejectionCode | None = None


class Booking(Document):
    """A patient's appointment request and where it stands."""

    id: str = Field(default_factory=new_booking_id)  # type: ignore[assignment]
    patient_name: str
    patient_email: str
    # The address as its mailbox knows it (clinic.store.email_keys): one patient, one key.
    patient_email_key: str = ""
    date: datetime
    doctor_id: str | None = None
    # The language of the patient's emails.
    language: Language = Language.ES
    # The doctor's name when the booking was decided, for the patient's emails.
    doctor_name: str | None = None
    status: BookingStatus = BookingStatus.PENDING
    # How many times the booking has changed: every move of its status adds one. Its
    # announcements carry it, so a listener (a calendar) can tell an older one.
    revision: int = 0
    # Which decision won, when workers raced: decisions are written in batches,
    # and a batch's result only counts its winners.
    decision_id: str | None = None
    reason: str | None = None
    reason_code: RejectionCode | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # The listing order, newest first: creation time, then id to break ties. One
    # field, so a page boundary is a single range bound on an index.
    list_key: str = ""
    # The outbox record of the booking's request, kept in the booking itself so that
    # storing a booking is one write: while set, the request may not have reached a
    # worker, and the outbox relay sends it from then on. A decision clears it.
    request_due_at: datetime | None = None
    # The ticket of the request's hand-over to the broker, ``<API process>:<number>``:
    # the relay sends a due request again only if that process never recorded it as
    # handed over (see clinic.domain.hand_overs).
    hand_over: str | None = None
    # A move the patient asked for: until the booking workers decide it, the booking keeps
    # its appointment (and its slot). Its request message is due like a booking's.
    pending_move: PendingMove | None = None
    last_move: MoveOutcome | None = None
    # The SHA-256 digest of the patient's manage token; the token itself is never stored.
    manage_token_digest: str | None = None
    # When the patient's name and email were removed (erased, or past retention).
    personal_data_removed_at: datetime | None = None

    @model_validator(mode="after")
    def _keyed_for_listing(self) -> "Booking":
        if not self.patient_email_key:
            self.patient_email_key = email_key(self.patient_email)
        if not self.list_key:
            self.list_key = f"{self.created_at.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%f}|{self.id}"
        return self

    class Settings:
        name = "bookings"
        indexes: ClassVar[list[IndexModel]] = [
            # GET /bookings, newest first, unfiltered or by one filter (see clinic.store.listing).
            IndexModel([("list_key", DESCENDING)], name="list_all"),
            IndexModel([("status", ASCENDING), ("list_key", DESCENDING)], name="list_by_status"),
            # A patient's bookings: listed, counted against the limit, exported, erased.
            IndexModel(
                [("patient_email_key", ASCENDING), ("list_key", DESCENDING)],
                name=PATIENT_BOOKINGS,
            ),
            IndexModel([("date", ASCENDING), ("list_key", DESCENDING)], name="list_by_date"),
            # A doctor's bookings, listed. (Availability reads the day through list_by_date.)
            IndexModel([("doctor_id", ASCENDING), ("list_key", DESCENDING)], name="list_by_doctor"),
            # The outbox relay. Partial: a booking is in it only until it is decided.
            IndexModel(
                [("request_due_at", ASCENDING)],
                name="due_requests",
                partialFilterExpression={"request_due_at": due_by()},
            ),
        ]


class MessageKind(StrEnum):
    """What an outbox record stands for."""

    REQUEST = "request"
    """A booking request that reached the broker: written by earlier versions only (a
    request's hand-over is its API process's mark now), kept so their records still read."""
    STATUS = "status"
    """A status change, for the fanout exchange."""
    EMAIL = "email"
    """The email of a status change or a reminder, to the patient."""
    REMINDER = "reminder"
    """A reminder of a confirmed appointment, for the fanout exchange when it is due."""


SENT_RECORD_TTL = 7 * 24 * 3600
"""Seconds a sent record is kept: a copy of its message arriving later is not sent again."""


class OutboxRecord(Document):
    """One message that must leave the clinic, and whether it has.

    Its id names the message: ``status:<booking>:<status>``,
    ``reminder:<booking>:<revision>``, ``email:<booking>:<status>`` or
    ``email:<booking>:reminder-<revision>``. While the message has not left,
    ``due_at`` says when it is to be sent (again, if nobody has): see
    ``clinic.domain.outbox``; a reminder's is when it falls due.
    Once it has, ``due_at`` is gone and ``sent_at`` is set, so that a copy of the
    message is recognised. A booking request is not recorded here: its due part is
    the booking's ``request_due_at``, and whether it reached the broker is its API
    process's hand-over mark (``HandOverMark``).
    """

    id: str  # type: ignore[assignment]
    kind: MessageKind
    booking_id: str
    status: BookingStatus | None = None
    # The booking's revision a reminder is for: a booking changed since gets none.
    revision: int | None = None
    due_at: datetime | None = None
    sent_at: datetime | None = None
    attempts: int = 1
    # When the message was first recorded (a reminder: when it fell due): how long it
    # has waited, however often leased.
    recorded_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "outbox"
        indexes: ClassVar[list[IndexModel]] = [
            # The relay reads one kind at a time: the emails due while an SMTP server
            # is down are not its to send, and must not stand before the reminders.
            # Partial: a record is only in it while its message has not left.
            IndexModel(
                [("kind", ASCENDING), ("due_at", ASCENDING)],
                name="due_messages",
                partialFilterExpression={"due_at": due_by()},
            ),
            # MongoDB removes sent records by itself. Partial too: an unsent record
            # has no sent_at, and costs this index nothing.
            IndexModel(
                [("sent_at", ASCENDING)],
                name="expiry",
                expireAfterSeconds=SENT_RECORD_TTL,
                partialFilterExpression={"sent_at": {"$type": "date"}},
            ),
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


class HandOverMark(Document):
    """How far an API process's hand-overs of booking requests reached the broker: every
    request with a ticket numbered up to ``through``."""

    id: str  # type: ignore[assignment]
    through: int
    recorded_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "hand_over_marks"
        indexes: ClassVar[list[IndexModel]] = [
            # A process gone for a week has no request left waiting: forget it.
            IndexModel(
                [("recorded_at", ASCENDING)], name="expiry", expireAfterSeconds=SENT_RECORD_TTL
            ),
        ]


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
    OutboxRecord,
    SlotClaim,
    IdempotencyKey,
    HandOverMark,
]

OBSOLETE_INDEXES = {
    "bookings": [
        "newest_first",
        "doctor_schedule",
        "unannounced",
        "outbox",
        "relay_unannounced",
        "relay_unpublished",
        "list_by_patient",
        "request_due",
    ],
    "outbox": ["due"],
    "slot_claims": ["by_booking"],
}
"""Indexes earlier versions created and nothing reads: each one slows every write."""
