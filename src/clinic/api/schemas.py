"""Request bodies and responses of the HTTP API (camelCase, as the original clients send)."""

from datetime import datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt
from pydantic.alias_generators import to_camel

from clinic.api.fields import AppointmentDate, Email, PatientName, Shift, Text
from clinic.messages import BookingStatus, Language, RejectionCode
from clinic.store.doctor_profile import DoctorId, DoctorProfile, Weekday
from clinic.store.documents import Booking


class CamelModel(BaseModel):
    """camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


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
    patient_email: Email = Field(description="Where the confirmation email goes.")
    date: AppointmentDate = Field(
        description="Appointment time, ISO 8601 with a timezone (e.g. 2030-06-15T10:30:00Z)."
    )
    doctor_id: DoctorId | None = Field(
        None, description="The doctor to see; without it, any doctor free at that time."
    )
    language: Language = Field(
        Language.ES, description="The language of the patient's emails: `es` (Spanish) or `en`."
    )


class MoveRequest(CamelModel):
    """Where a patient, or staff, ask to move a confirmed appointment to."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"date": "2030-06-15T11:00:00Z", "doctorId": "dra-garcia"}]
        },
    )

    date: AppointmentDate = Field(
        description="The new appointment time, ISO 8601 with a timezone (one of the free slots)."
    )
    doctor_id: DoctorId | None = Field(
        None, description="The doctor to see then; without it, the appointment's doctor."
    )


class PendingMoveOut(CamelModel):
    """A move asked for and not yet decided: until it is, the appointment stays as it is."""

    date: datetime
    doctor_id: str


class BookingStatusOut(CamelModel):
    """Where a booking stands, as anyone with its id may see it: no patient data."""

    id: str
    status: BookingStatus
    reason: str | None = Field(None, description="Why the booking was rejected.")
    reason_code: RejectionCode | None = None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, booking: Booking) -> Self:
        """The view of a stored booking that this model shows: its fields, no others."""
        return cls.model_validate(booking.model_dump(include=set(cls.model_fields)))


class BookingOut(BookingStatusOut):
    """A booking with the patient's details: for its manage token or staff only."""

    patient_name: str
    patient_email: str
    date: datetime
    doctor_id: str | None = Field(None, description="The doctor, once one is chosen.")
    doctor_name: str | None = Field(None, description="The doctor's name, once one is chosen.")
    language: Language = Field(Language.ES, description="The language of the patient's emails.")
    pending_move: PendingMoveOut | None = Field(
        None, description="A move asked for, being decided; the email tells how it ended."
    )


class NewBookingOut(BookingOut):
    """A booking just made, with the secret that opens it."""

    manage_token: str = Field(
        description=(
            "The patient's key to this booking, shown here and in the manage link of the "
            "patient's emails: send it as `Authorization: Bearer <token>` to see the "
            "booking's details, cancel it or move it. The clinic keeps only a digest of it."
        )
    )

    @classmethod
    def opened_by(cls, booking: Booking, token: str) -> "NewBookingOut":
        """The patient's view of a booking just made, with its manage token."""
        fields = booking.model_dump(include=set(BookingOut.model_fields))
        return cls.model_validate({**fields, "manage_token": token})


class BookingList(BaseModel):
    """A page of bookings, newest first, and how many match in all."""

    count: int = Field(description="How many bookings match, on all pages.")
    bookings: list[BookingOut]
    next: str | None = Field(None, description="The cursor of the next page, if there is one.")


class ErrorOut(BaseModel):
    """An error the client can act on."""

    detail: str


class Problem(BaseModel):
    """One thing wrong with a request: where, what, and its code."""

    loc: list[str | int] = Field(description="Where: `body` or a parameter's place, then names.")
    msg: str
    type: str = Field(description="The problem's code: a schema keyword's, or a rule's.")


class ProblemsOut(BaseModel):
    """A request the API refuses, with every problem it found (never what was sent)."""

    detail: list[Problem]


class HealthOut(BaseModel):
    """Liveness or readiness, with the state of each dependency."""

    status: str
    broker: str | None = None
    database: str | None = None


class DoctorFields(DoctorProfile):
    """A doctor's details on the wire (camelCase); unknown fields are refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    # The profile's own rules, with the codes the routes document for their refusals.
    name: Text
    specialty: Text
    working_hours: dict[Weekday, list[Shift]] = Field(
        description="Shifts per weekday, in the clinic's local time."
    )


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

    name: Text | None = None
    specialty: Text | None = None
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
