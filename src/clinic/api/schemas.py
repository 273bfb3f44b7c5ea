"""Request bodies and responses of the HTTP API (camelCase, as the original clients send)."""

import re
import unicodedata
from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
)
from pydantic.alias_generators import to_camel

from clinic.messages import BookingStatus, RejectionCode
from clinic.store.doctor_profile import DoctorId, DoctorProfile, Shift, ShortText, Weekday
from clinic.store.documents import Booking

EARLIEST_YEAR, LATEST_YEAR = 2000, 2100


class CamelModel(BaseModel):
    """camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


def _not_an_operator(value: str) -> str:
    # Stored as plain values they are harmless, but no patient is called "$where".
    if value.startswith("$"):
        raise ValueError("must not start with $")
    return value


def _plain_name(name: str) -> str:
    _not_an_operator(name)
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise ValueError("must not contain control characters")
    if not any(ch.isalpha() for ch in name):
        raise ValueError("must contain letters")
    return name


def _utc_millis(date: datetime) -> datetime:
    try:
        utc = date.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("is out of range") from exc
    if not EARLIEST_YEAR <= utc.year <= LATEST_YEAR:
        raise ValueError(f"must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


PatientName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_plain_name),
]


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_text(value: object) -> object:
    # Pydantic would read a number, or a string of digits, as a Unix time.
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("must be an ISO 8601 date (YYYY-MM-DD...), not a number")
    return value


def _day_in_range(day: date) -> date:
    if not EARLIEST_YEAR <= day.year <= LATEST_YEAR:
        raise ValueError(f"must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
    return day


AppointmentDate = Annotated[AwareDatetime, BeforeValidator(_iso_text), AfterValidator(_utc_millis)]
"""An ISO 8601 date and time with a timezone, stored in UTC to the millisecond.

Every date the API takes is bounded (years 2000 to 2100), so no date arithmetic
on it can overflow.
"""
Day = Annotated[date, BeforeValidator(_iso_text), AfterValidator(_day_in_range)]
"""A calendar day, ``YYYY-MM-DD``, between the years 2000 and 2100."""


class BookingRequest(CamelModel):
    """What a patient sends to book an appointment."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "patientName": "Juan Pérez",
                    "patientEmail": "juan@example.com",
                    "date": "2030-06-15T10:30:00Z",
                }
            ]
        },
    )

    patient_name: PatientName = Field(description="The patient's full name.")
    patient_email: Annotated[EmailStr, AfterValidator(_not_an_operator)] = Field(
        description="Where the confirmation email goes."
    )
    date: AppointmentDate = Field(
        description="Appointment time, ISO 8601 with a timezone (e.g. 2030-06-15T10:30:00Z)."
    )
    doctor_id: DoctorId | None = Field(
        None, description="The doctor to see; without it, any doctor free at that time."
    )


class BookingStatusOut(CamelModel):
    """Where a booking stands, as anyone with its id may see it: no patient data."""

    id: str
    status: BookingStatus
    reason: str | None = Field(None, description="Why the booking was rejected.")
    reason_code: RejectionCode | None = None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, booking: Booking) -> "BookingStatusOut":
        """The public view of a stored booking."""
        return cls.model_validate(booking.model_dump(include=set(cls.model_fields)))


class BookingOut(BookingStatusOut):
    """A booking with the patient's details: for its manage token or staff only."""

    patient_name: str
    patient_email: str
    date: datetime
    doctor_id: str | None = Field(None, description="The doctor, once one is chosen.")

    @classmethod
    def of(cls, booking: Booking) -> "BookingOut":
        """The patient's view of a stored booking."""
        return cls.model_validate(booking.model_dump(include=set(cls.model_fields)))


class NewBookingOut(BookingOut):
    """A booking just made, with the secret that opens it."""

    manage_token: str = Field(
        description=(
            "The patient's key to this booking, shown only here: send it as "
            "`Authorization: Bearer <token>` to see the booking's details or cancel it. "
            "The clinic keeps only a digest of it and cannot show it again."
        )
    )


class BookingList(BaseModel):
    """A page of bookings, newest first, and how many match in all."""

    count: int = Field(description="How many bookings match, on all pages.")
    bookings: list[BookingOut]
    next: str | None = Field(None, description="The cursor of the next page, if there is one.")


class ErrorOut(BaseModel):
    """An error the client can act on."""

    detail: str


class HealthOut(BaseModel):
    """Liveness or readiness, with the state of each dependency."""

    status: str
    broker: str | None = None
    database: str | None = None


class DoctorFields(DoctorProfile):
    """A doctor's details on the wire (camelCase); unknown fields are refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class NewDoctor(DoctorFields):
    """A doctor to add: in the seed file, or from staff over the API."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "dra-garcia",
                    "name": "Dra. Lucía García",
                    "specialty": "Medicina general",
                    "workingHours": {"mon": [["09:00", "14:00"], ["16:00", "19:00"]]},
                    "slotMinutes": 30,
                }
            ]
        }
    )

    id: DoctorId


class DoctorOut(NewDoctor):
    """A doctor as the API shows it."""


class DoctorList(BaseModel):
    """The clinic's doctors."""

    doctors: list[DoctorOut]


class DoctorChanges(CamelModel):
    """What staff change about a doctor; fields left out stay as they are."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"slotMinutes": 20, "workingHours": {"mon": [["08:00", "15:00"]]}}]
        },
    )

    name: ShortText | None = None
    specialty: ShortText | None = None
    working_hours: dict[Weekday, list[Shift]] | None = None
    slot_minutes: StrictInt | None = Field(None, ge=1, le=480)
    active: StrictBool | None = None


class SlotOut(CamelModel):
    """One free appointment slot."""

    start: datetime = Field(description="Start time in UTC: send it as `date` to book it.")
    local_start: str = Field(description="Start time in the clinic's timezone, with its offset.")


class AvailabilityOut(CamelModel):
    """A doctor's free slots on one local day."""

    doctor_id: str
    date: str
    timezone: str
    slots: list[SlotOut]
