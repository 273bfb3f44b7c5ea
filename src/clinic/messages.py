"""Commands and events on the wire.

Field names are camelCase on the wire, as in the original system's JSON.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Discriminator, Field, Tag
from pydantic.alias_generators import to_camel


class BookingStatus(StrEnum):
    """Where a booking stands."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
    """The patient did not come to the confirmed appointment (marked by staff)."""


class Language(StrEnum):
    """The languages the clinic writes to patients in; Spanish, the original system's, first."""

    ES = "es"
    EN = "en"


class RejectionCode(StrEnum):
    """Machine-readable reasons for a rejected booking."""

    DATE_IN_PAST = "date_in_past"
    OUTSIDE_WORKING_HOURS = "outside_working_hours"
    NOT_ON_SLOT_BOUNDARY = "not_on_slot_boundary"
    DOCTOR_UNAVAILABLE = "doctor_unavailable"
    SLOT_TAKEN = "slot_taken"
    PROCESSING_FAILED = "processing_failed"


class WireMessage(BaseModel):
    """Base of every broker message: camelCase JSON, unknown fields ignored, immutable."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class BookAppointment(WireMessage):
    """Command: decide whether the stored booking ``bookingId`` can be confirmed."""

    booking_id: str = Field(description="Id of the stored booking to process.")


class BookingStatusChanged(WireMessage):
    """Event: a booking reached a new status; fanned out to every notification service.

    It names no patient: whatever is bound to the exchange sees it. A notifier that
    needs the patient's contact details reads them from the booking.
    """

    event: Literal["status_changed"] = Field(
        "status_changed", description="What happened: the events of the fanout exchange differ."
    )
    booking_id: str
    status: BookingStatus
    date: AwareDatetime = Field(description="The appointment time (UTC).")
    doctor_id: str | None = Field(None, description="The doctor the appointment is with.")
    doctor_name: str | None = None
    reason: str | None = Field(None, description="Why the booking was rejected.")
    reason_code: RejectionCode | None = None
    occurred_at: datetime
    revision: int = Field(
        0,
        description=(
            "How many times the booking had changed with this change: a later change of "
            "the same booking has a higher one."
        ),
    )

    @property
    def change(self) -> str:
        """Which of its booking's changes this is: its status, reached once."""
        return self.status.value


class AppointmentReminderDue(WireMessage):
    """Event: a confirmed appointment is ``CLINIC_REMINDER_BEFORE`` away, and the patient is
    to be reminded of it; fanned out like every status change.

    Announced by the outbox relay at most once per revision of the booking that stays
    confirmed; never for a cancelled or moved one. It names no patient either.
    """

    event: Literal["reminder_due"] = Field("reminder_due", description="What happened.")
    booking_id: str
    date: AwareDatetime = Field(description="The appointment time (UTC).")
    doctor_id: str | None = Field(None, description="The doctor the appointment is with.")
    doctor_name: str | None = None
    revision: int = Field(description="The booking's revision the reminder is for.")
    occurred_at: datetime

    @property
    def change(self) -> str:
        """Which of its booking's messages this is: one reminder per revision."""
        return f"reminder-{self.revision}"


class MoveDecided(WireMessage):
    """Event: the booking workers decided a patient's request to move a confirmed
    appointment: moved to the requested time, or refused (the appointment stays)."""

    event: Literal["move_decided"] = Field("move_decided", description="What happened.")
    booking_id: str
    moved: bool = Field(description="Whether the appointment is now at the requested time.")
    date: AwareDatetime = Field(description="The appointment time now (UTC).")
    requested_date: AwareDatetime = Field(description="The time the patient asked for (UTC).")
    previous_date: AwareDatetime | None = Field(None, description="Moved: the time before.")
    doctor_id: str | None = Field(None, description="The doctor the appointment is with.")
    doctor_name: str | None = None
    reason_code: RejectionCode | None = Field(None, description="Refused: why.")
    revision: int = Field(description="The booking's revision with this decision.")
    occurred_at: datetime

    @property
    def change(self) -> str:
        """Which of its booking's changes this is: one move decided per revision."""
        return f"move-{self.revision}"


def _event_kind(event: object) -> str:
    # Events from before the field existed are status changes.
    if isinstance(event, dict):
        return str(event.get("event", "status_changed"))
    return str(getattr(event, "event", "status_changed"))


BookingEvent = Annotated[
    Annotated[BookingStatusChanged, Tag("status_changed")]
    | Annotated[AppointmentReminderDue, Tag("reminder_due")]
    | Annotated[MoveDecided, Tag("move_decided")],
    Discriminator(_event_kind),
]
"""Any event of the fanout exchange, told apart by its ``event`` field."""
PatientEvent = BookingStatusChanged | AppointmentReminderDue | MoveDecided
"""What a patient is emailed about: a change of their booking, a reminder of it, or
how their request to move it ended."""
