"""Commands and events on the wire.

Field names are camelCase on the wire, as in the original system's JSON.
"""

from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class BookingStatus(StrEnum):
    """Where a booking stands."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


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
