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
"""

from dataclasses import dataclass
from datetime import timedelta
from email.utils import parseaddr
from urllib.parse import urlsplit

from icalendar import Calendar, Event, vCalAddress

from clinic.clock import utcnow
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


@dataclass(frozen=True)
class CalendarInvite:
    """An iCalendar object, and the method it carries (the MIME part's ``method``)."""

    method: str
    text: str


def organizer() -> vCalAddress:
    """The clinic, as the organizer every invite must name: ``CLINIC_EMAIL_FROM``."""
    name, address = parseaddr(settings.email_from)
    if "@" not in address:  # the log sender needs no From; the invite still needs one
        address = f"citas@{urlsplit(settings.public_url).hostname}"
    organizer = vCalAddress(f"mailto:{address}")
    if name:
        organizer.params["CN"] = name
    return organizer


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
    calendar = Calendar()
    calendar.add("prodid", PRODUCT)
    calendar.add("version", "2.0")
    calendar.add("method", method)
    appointment = Event()
    appointment.add("uid", event.booking_id)
    appointment.add("sequence", event.revision)
    appointment.add("dtstamp", utcnow())
    appointment.add("dtstart", event.date)
    appointment.add("dtend", event.date + timedelta(minutes=minutes))
    anyone, with_doctor = SUMMARIES[booking.language]
    summary = with_doctor.format(doctor=event.doctor_name) if event.doctor_name else anyone
    appointment.add("summary", summary)
    appointment.add("status", "CONFIRMED" if method == "REQUEST" else "CANCELLED")
    appointment.add("organizer", organizer())
    # The patient's own calendar: no answer is asked for, the clinic has confirmed it.
    attendee = vCalAddress(f"mailto:{booking.patient_email}")
    attendee.params.update({"ROLE": "REQ-PARTICIPANT", "PARTSTAT": "ACCEPTED", "RSVP": "FALSE"})
    appointment.add("attendee", attendee)
    calendar.add_component(appointment)
    return CalendarInvite(method, calendar.to_ical().decode())
