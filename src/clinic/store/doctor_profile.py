"""What a doctor is made of: an id, a name, a specialty, working hours and a slot length.

The stored ``Doctor`` and the API's doctor bodies share these fields and their rules.
"""

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, StrictBool, StrictInt, StringConstraints

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
    # Strict: JSON's 0 and "30" are not a yes/no and a number of minutes.
    slot_minutes: StrictInt = Field(30, ge=1, le=480, description="Length of one appointment.")
    active: StrictBool = True
