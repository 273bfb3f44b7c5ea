"""The API's field types: what each value must be, as the OpenAPI document says.

Where JSON Schema can say a rule (a length, a pattern), the field's schema says
it. Where it cannot (a shift that ends before it starts, a name without
letters), the refusal is a 422 whose problem ``type`` is the rule's code, and
the routes document those codes in their 422 answer (``clinic.api.errors``).
"""

import re
import unicodedata
from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    EmailStr,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

from clinic.store.doctor_profile import ClockTime, minutes_of

EARLIEST_YEAR, LATEST_YEAR = 2000, 2100
# The years above, as the document states them: the year as written, before any offset.
_YEAR_PATTERN = "^(20[0-9]{2}|2100)-"

RULES = {
    "blank": "the text is only whitespace",
    "no_letter": "a name has no letters",
    "control_character": "a name contains control characters",
    "operator": "a name or address starts with `$`",
    "email_address": "the address is not one mail can go to, as one at a reserved domain",
    "shift_order": "a shift does not end after it starts",
    "int_type": "a whole number written with a fraction, as 30.0: integers are JSON integers",
}
"""Rules JSON Schema cannot say, by the code a refusal names them with."""


def _refuse(code: str, message: str) -> PydanticCustomError:
    # Without a context, pydantic shows the message as it is: no braces are filled in.
    return PydanticCustomError(code, message)


def _not_an_operator(value: str) -> str:
    # Stored as plain values they are harmless, but no patient is called "$where".
    if value.startswith("$"):
        raise _refuse("operator", "must not start with $")
    return value


def _trimmed(text: str) -> str:
    # Trimmed after the length check, so the document's maxLength counts what was sent.
    trimmed = text.strip()
    if not trimmed:
        raise _refuse("blank", "must not be blank")
    return trimmed


def _plain_name(name: str) -> str:
    name = _not_an_operator(_trimmed(name))
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise _refuse("control_character", "must not contain control characters")
    if not any(ch.isalpha() for ch in name):
        raise _refuse("no_letter", "must contain letters")
    return name


Text = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_trimmed)]
"""A name or title: 1 to 200 characters as sent, stored trimmed, not blank."""

PatientName = Annotated[
    str, StringConstraints(min_length=1, max_length=200), AfterValidator(_plain_name)
]
"""A patient's name: as ``Text``, with letters and no control characters."""


def _mailbox(value: object, handler: ValidatorFunctionWrapHandler) -> object:
    if not isinstance(value, str):
        return handler(value)
    try:
        return handler(value)
    except ValidationError as exc:
        # JSON Schema's "email" is looser than what mail can be sent to: this names the gap.
        raise _refuse("email_address", exc.errors()[0]["msg"]) from None


Email = Annotated[EmailStr, WrapValidator(_mailbox), AfterValidator(_not_an_operator)]
"""An address the clinic can email."""


def _in_order(shift: tuple[str, str]) -> tuple[str, str]:
    if minutes_of(shift[0]) >= minutes_of(shift[1]):
        raise _refuse("shift_order", f"a shift must end after it starts: {shift[0]}-{shift[1]}")
    return shift


Shift = Annotated[tuple[ClockTime, ClockTime], AfterValidator(_in_order)]
"""Opening and closing time, local to the clinic, e.g. ``("09:00", "14:00")``."""


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_text(value: object) -> object:
    # Pydantic would read a number, or a string of digits, as a Unix time.
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("must be an ISO 8601 date (YYYY-MM-DD...), not a number")
    return value


def _in_range(year: int) -> None:
    if not EARLIEST_YEAR <= year <= LATEST_YEAR:
        raise ValueError(f"must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}")


def _utc_millis(moment: datetime) -> datetime:
    # Checked as written, before the offset: then no offset can take it out of range.
    _in_range(moment.year)
    utc = moment.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


def _day_in_range(day: date) -> date:
    _in_range(day.year)
    return day


AppointmentDate = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_text),
    AfterValidator(_utc_millis),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": _YEAR_PATTERN}),
]
"""An ISO 8601 date and time with a timezone, stored in UTC to the millisecond.

Its year, as written, is between 2000 and 2100, so no date arithmetic on it
can overflow.
"""
Day = Annotated[
    date,
    BeforeValidator(_iso_text),
    AfterValidator(_day_in_range),
    WithJsonSchema({"type": "string", "format": "date", "pattern": _YEAR_PATTERN}),
]
"""A calendar day, ``YYYY-MM-DD``, between the years 2000 and 2100."""
