"""The invite's text, read back by icalendar whatever the names in it: a doctor's name
or the clinic's that holds commas, semicolons, quotes, line breaks or accents, and an
address long enough to fold, come back as written, in lines a calendar accepts.

The clinic writes the invite's lines itself (``clinic.domain.calendar_invite``); the
library that reads calendars is the judge of them.
"""

import re
from datetime import UTC, datetime
from email.utils import formataddr, parseaddr
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from clinic.clock import utcnow
from clinic.domain.calendar_invite import LINE_OCTETS, calendar_invite, folded, text_value
from clinic.messages import BookingStatus, BookingStatusChanged, Language
from clinic.settings import settings as clinic_settings
from clinic.store.documents import Booking

WHEN = datetime(2027, 6, 14, 8, 30, tzinfo=UTC)
CONTROLS = "".join(chr(c) for c in (*range(0x20), 0x7F) if c not in (9, 10))
HOSTILE = st.text(
    st.one_of(
        st.sampled_from(',;:"\\^\r\n\t' + CONTROLS + "ñé€𝄞"),
        st.characters(exclude_categories=["Cs"]),  # no lone surrogate gets past JSON or BSON
    ),
    max_size=120,
)
# RFC 5545 has no backslash escapes in a parameter's value, but icalendar reads `\,`
# in one as an escaped comma: the clinic's name (the organizer's CN) is tried without.
CLINIC_NAMES = HOSTILE.map(lambda name: name.replace("\\", "/"))

RFC_5545_TEXT = re.compile(r"(?:[^\\;,\x00-\x08\x0a-\x1f\x7f]|\\[\\;,nN])*")
"""A TEXT value: safe characters and escapes (section 3.3.11)."""


def as_read(text: str) -> str:
    """What a calendar should show of ``text``: one kind of line break, no control
    characters but the tab and the line break."""
    one_kind = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c for c in one_kind if c not in CONTROLS)


def invite_text(doctor: str, email: str) -> str:
    event = BookingStatusChanged(
        booking_id="3f2b8c1e-7d4a-4c55-9a0e-2b6f1d9c8e71",
        status=BookingStatus.CONFIRMED,
        date=WHEN,
        doctor_name=doctor,
        occurred_at=utcnow(),
        revision=3,
    )
    booking = Booking.model_construct(patient_email=email, date=WHEN, language=Language.EN)
    invite = calendar_invite(event, booking, 45)
    assert invite is not None
    return invite.text


@settings(max_examples=300, deadline=None)
@given(doctor=HOSTILE.filter(str.strip), clinic=CLINIC_NAMES, email=st.emails())
def test_any_names_and_address_read_back_as_written(doctor: str, clinic: str, email: str) -> None:
    with mock.patch.object(
        clinic_settings, "email_from", formataddr((clinic, "citas@clinic.test"))
    ):
        text = invite_text(doctor, email)
        clinic_name = parseaddr(clinic_settings.email_from)[0]

    calendar = Calendar.from_ical(text)
    assert isinstance(calendar, Calendar)
    [appointment] = calendar.events
    assert appointment.summary == f"Appointment with {as_read(doctor)}"
    assert str(appointment.attendees[0]) == f"mailto:{email}"
    assert str(appointment.organizer) == "mailto:citas@clinic.test"
    assert appointment.organizer.params.get("CN", "") == as_read(clinic_name)
    assert (appointment.start, appointment.sequence) == (WHEN, 3)
    assert text.endswith("\r\n")
    for line in text.split("\r\n"):
        assert "\r" not in line
        assert "\n" not in line
        assert len(line.encode()) <= LINE_OCTETS, line
    # As RFC 5545 writes TEXT: some parsers split a value at a bare comma or semicolon.
    [summary] = [
        line for line in text.replace("\r\n ", "").split("\r\n") if line.startswith("SUMMARY:")
    ]
    assert RFC_5545_TEXT.fullmatch(summary.removeprefix("SUMMARY:")), summary


@given(st.text(st.sampled_from("aé€𝄞\\,;\n"), min_size=30, max_size=400))
def test_a_long_line_folds_between_characters_and_escapes_and_unfolds_to_itself(
    text: str,
) -> None:
    line = f"SUMMARY:{text_value(text)}"
    pieces = folded(line).split("\r\n ")

    assert "".join(pieces) == line  # and no character was split: each piece decoded
    assert all(len(piece.encode()) <= LINE_OCTETS - (i > 0) for i, piece in enumerate(pieces))
    # An escape is a backslash and one character: a piece ending in an odd run of
    # backslashes would part the two.
    assert all((len(p) - len(p.rstrip("\\"))) % 2 == 0 for p in pieces[:-1]), pieces
