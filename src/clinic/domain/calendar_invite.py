"""The calendar invite in a patient's email (RFC 5545, with RFC 5546's methods).

A confirmation carries ``METHOD:REQUEST``, which puts the appointment in the
patient's calendar; a move carries another ``REQUEST``, at the new time; a
cancellation carries ``METHOD:CANCEL``, which takes it out.
Both name the event by the same ``UID``, the booking's id (a UUID, as RFC 7986
advises), so a calendar updates its one entry instead of adding another. Their
``SEQUENCE`` is the booking's revision, which grows with every change: a calendar
that gets an older invite after a newer one keeps the newer.

The invite names the doctor and the time, never the manage link: calendars are
shared and synchronised far more widely than an inbox.

An invite is always the same twelve properties, so their lines are written here:
icalendar's object model, built and serialised for each email, was most of the
notification worker's work in composing one (docs/performance.md). The tests read
every invite back with icalendar, hostile names and long addresses included.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from urllib.parse import urlsplit

from clinic.clock import utcnow
from clinic.mail.lines import character_boundary, one_kind_of_line_break
from clinic.messages import BookingStatus, BookingStatusChanged, Language, MoveDecided
from clinic.settings import settings
from clinic.store.documents import Booking

METHODS = {BookingStatus.CONFIRMED: "REQUEST", BookingStatus.CANCELLED: "CANCEL"}
"""The changes that carry an invite, and what the invite asks of the calendar."""
SUMMARIES = {
    Language.ES: ("Cita médica", "Cita con {doctor}"),
    Language.EN: ("Medical appointment", "Appointment with {doctor}"),
}
PRODUCT = "-//clinic//appointments//EN"
LINE_OCTETS = 75
"""The longest a line may be, its line break aside (RFC 5545 section 3.1)."""
# Dropped from both kinds of value: every control character but the tab, which both
# allow, and the line break, which each writes in its own way.
_CONTROLS: dict[int, str | None] = {c: None for c in (*range(0x20), 0x7F) if c not in (9, 10)}
_TEXT = _CONTROLS | str.maketrans({"\\": "\\\\", ";": "\\;", ",": "\\,", "\n": "\\n"})
_PARAMETER = _CONTROLS | str.maketrans({"^": "^^", "\n": "^n", '"': "^'"})


@dataclass(frozen=True)
class CalendarInvite:
    """An iCalendar object, and the method it carries (the MIME part's ``method``)."""

    method: str
    text: str


def text_value(text: str) -> str:
    """``text`` as an iCalendar TEXT value: a line break as ``\\n``, backslashes,
    semicolons and commas escaped, other control characters dropped (section 3.3.11)."""
    return one_kind_of_line_break(text).translate(_TEXT)


def parameter_value(text: str) -> str:
    """``text`` as a parameter's value: control characters dropped, ``^``, line breaks
    and double quotes caret-encoded (RFC 6868), and quoted where it holds ``,;:`` or a
    backslash (unquoted, a backslash before the ``:`` reads as an escape to some parsers,
    icalendar's among them)."""
    text = one_kind_of_line_break(text).translate(_PARAMETER)
    return f'"{text}"' if any(mark in text for mark in ",;:\\") else text


def folded(line: str) -> str:
    """One content line, folded into lines of at most 75 octets: each fold a CRLF and a
    space, never inside a character's UTF-8 bytes nor between an escape's two
    characters (``\\,``, ``^n``), which some calendars misread."""
    octets = line.encode()
    pieces: list[bytes] = []
    start, room = 0, LINE_OCTETS
    while len(octets) - start > room:
        end = character_boundary(octets, start + room)
        end -= _opens_an_escape(octets, start, end)
        pieces.append(octets[start:end])
        start, room = end, LINE_OCTETS - 1  # the next line starts with the fold's space
    pieces.append(octets[start:])
    return b"\r\n ".join(pieces).decode()


def _opens_an_escape(octets: bytes, start: int, end: int) -> int:
    """1 if the piece ``octets[start:end]`` ends in the first character of an escape:
    an odd run of ``\\`` (or of ``^``) at its end; else 0."""
    last = octets[end - 1]
    if last not in b"\\^":
        return 0
    run = 1
    while end - run > start and octets[end - run - 1] == last:
        run += 1
    return run % 2


def timestamp(moment: datetime) -> str:
    """A DATE-TIME in UTC, the form every calendar reads the same (section 3.3.5)."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def organizer() -> str:
    """The ORGANIZER property every invite must have: the clinic, ``CLINIC_EMAIL_FROM``."""
    name, address = parseaddr(settings.email_from)
    if "@" not in address:  # the log sender needs no From; the invite still needs one
        address = f"citas@{urlsplit(settings.public_url).hostname}"
    common_name = f";CN={parameter_value(name)}" if name else ""
    return f"ORGANIZER{common_name}:mailto:{address}"


def calendar_invite(
    event: BookingStatusChanged | MoveDecided, booking: Booking, minutes: int
) -> CalendarInvite | None:
    """The invite for ``event``'s email, for an appointment ``minutes`` long; None if its
    change touches no calendar (a request received, a rejection, a move refused).

    A move is a ``REQUEST`` at the new time: same ``UID``, higher ``SEQUENCE``."""
    if isinstance(event, MoveDecided):
        method = "REQUEST" if event.moved else None
    else:
        method = METHODS.get(event.status)
    if method is None:
        return None
    anyone, with_doctor = SUMMARIES[booking.language]
    summary = with_doctor.format(doctor=event.doctor_name) if event.doctor_name else anyone
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODUCT}",
        f"METHOD:{method}",
        "BEGIN:VEVENT",
        f"UID:{event.booking_id}",
        f"SEQUENCE:{event.revision}",
        f"DTSTAMP:{timestamp(utcnow())}",
        f"DTSTART:{timestamp(event.date)}",
        f"DTEND:{timestamp(event.date + timedelta(minutes=minutes))}",
        f"SUMMARY:{text_value(summary)}",
        f"STATUS:{'CONFIRMED' if method == 'REQUEST' else 'CANCELLED'}",
        organizer(),
        # The patient's own calendar: no answer is asked for, the clinic has confirmed it.
        "ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;RSVP=FALSE:"
        f"mailto:{booking.patient_email}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return CalendarInvite(method, "".join(f"{folded(line)}\r\n" for line in lines))
