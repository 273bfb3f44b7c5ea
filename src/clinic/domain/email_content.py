"""What an email to a patient says, in the patient's language: its subject, a plain-text
part and an HTML part, from the templates in ``email_templates/<language>/``.

Dates are written by Babel in the patient's language, in the clinic's timezone, with
its UTC offset. The HTML part is autoescaped: the name typed in a booking is anyone's
text, so it is shown as text, never as markup, and never comes first.
"""

from datetime import datetime
from functools import cache

from babel import Locale
from babel.dates import format_date, format_time
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from clinic.domain.calendar_invite import calendar_invite
from clinic.domain.manage_tokens import manage_link
from clinic.domain.scheduling import local_time
from clinic.mail import Email
from clinic.messages import (
    AppointmentReminderDue,
    BookingStatus,
    BookingStatusChanged,
    Language,
    MoveDecided,
    PatientEvent,
    RejectionCode,
)
from clinic.store.documents import Booking

SUBJECTS: dict[Language, dict[str, str]] = {
    Language.ES: {
        "reminder": "Recordatorio de su cita",
        "moved": "Su cita ha cambiado",
        "move_refused": "No hemos podido cambiar su cita",
        BookingStatus.PENDING: "Hemos recibido su solicitud de cita",
        BookingStatus.CONFIRMED: "Su cita está confirmada",
        BookingStatus.REJECTED: "No hemos podido reservar su cita",
        BookingStatus.CANCELLED: "Su cita está cancelada",
    },
    Language.EN: {
        "reminder": "A reminder of your appointment",
        "moved": "Your appointment has been moved",
        "move_refused": "We could not move your appointment",
        BookingStatus.PENDING: "We received your appointment request",
        BookingStatus.CONFIRMED: "Your appointment is confirmed",
        BookingStatus.REJECTED: "Your appointment request could not be booked",
        BookingStatus.CANCELLED: "Your appointment is cancelled",
    },
}
EMAILED = [
    BookingStatus.PENDING,
    BookingStatus.CONFIRMED,
    BookingStatus.REJECTED,
    BookingStatus.CANCELLED,
]
"""The changes the patient is written to about; a no-show is the clinic's own record."""
REASONS = {
    Language.ES: {
        RejectionCode.DATE_IN_PAST: "la fecha ya ha pasado",
        RejectionCode.OUTSIDE_WORKING_HOURS: "no hay consulta a esa hora",
        RejectionCode.NOT_ON_SLOT_BOUNDARY: "las citas empiezan a horas fijas",
        RejectionCode.DOCTOR_UNAVAILABLE: "el médico no pasa consulta",
        RejectionCode.SLOT_TAKEN: "esa hora ya está reservada",
        RejectionCode.PROCESSING_FAILED: "no hemos podido tramitarla; llámenos, por favor",
    },
    Language.EN: {
        RejectionCode.DATE_IN_PAST: "the date has passed",
        RejectionCode.OUTSIDE_WORKING_HOURS: "no doctor works at that time",
        RejectionCode.NOT_ON_SLOT_BOUNDARY: "appointments start at fixed times",
        RejectionCode.DOCTOR_UNAVAILABLE: "the doctor does not see patients",
        RejectionCode.SLOT_TAKEN: "that time is already booked",
        RejectionCode.PROCESSING_FAILED: "we could not process it; please call us",
    },
}

_templates = Environment(
    loader=PackageLoader("clinic.domain", "email_templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    # The templates ship with the package: compiled once, never checked for changes on disk.
    auto_reload=False,
)


@cache
def babel_locale(language: Language) -> Locale:
    """Babel's locale of ``language``, parsed once: it keeps its own data, loaded once."""
    return Locale.parse(language.value)


def local_when(moment: datetime, language: Language) -> str:
    """An appointment time as the patient reads it, in their language: clinic-local, with
    its UTC offset (``sábado, 27 de marzo de 2027, 09:00 CET (UTC+01:00)``)."""
    local = local_time(moment)
    offset = local.strftime("%z")
    day = format_date(local, format="full", locale=babel_locale(language))
    # The clinic's 24-hour clock in both languages, as its schedules and front desk say it.
    hour = format_time(local, "HH:mm", locale=babel_locale(language))
    return f"{day}, {hour} {local.tzname()} (UTC{offset[:3]}:{offset[3:]})"


MANAGED = {"reminder", "moved", "move_refused", BookingStatus.PENDING, BookingStatus.CONFIRMED}
"""The emails that carry the manage link: the booking can still be changed."""


def compose_email(event: PatientEvent, booking: Booking, minutes: int = 30) -> Email:
    """The email that tells the patient of ``booking`` about ``event``, or reminds them of
    the appointment, in their language, with the manage link while the booking can
    change and, for a confirmation, a move or a cancellation, a calendar invite for an
    appointment ``minutes`` long.

    It starts with the clinic's words, not with the name typed in the booking: that
    text is anyone's, and must not make the clinic's email say what a stranger wants.
    """
    language = booking.language
    when = local_when(event.date, language)
    # What the email is about: its template's part and its subject.
    requested = previous = None
    if isinstance(event, BookingStatusChanged):
        kind, code, reason = event.status.value, event.reason_code, event.reason
    elif isinstance(event, MoveDecided):
        kind = "moved" if event.moved else "move_refused"
        code, reason = event.reason_code, None
        requested = local_when(event.requested_date, language)
        previous = event.previous_date and local_when(event.previous_date, language)
    else:
        kind, code, reason = "reminder", None, None
    # A reminder carries no invite: the confirmation's is in the calendar already.
    invite = (
        None
        if isinstance(event, AppointmentReminderDue)
        else calendar_invite(event, booking, minutes)
    )
    values = {
        "status": kind,
        "when": when,
        "requested": requested,
        "previous": previous,
        "doctor": event.doctor_name,
        "reason": REASONS[language].get(code) if code else reason,
        "patient_name": booking.patient_name,
        "booking_id": event.booking_id,
        "manage_link": manage_link(event.booking_id) if kind in MANAGED else None,
    }
    return Email(
        to=booking.patient_email,
        subject=f"{SUBJECTS[language][kind]}: {when}",
        body=_templates.get_template(f"{language.value}/status.txt").render(values),
        booking_id=event.booking_id,
        # One Message-ID per change: a copy sent after a retry is the same email.
        reference=f"{event.booking_id}.{event.change}",
        html=_templates.get_template(f"{language.value}/status.html").render(values),
        language=language.value,
        calendar=invite.text if invite else "",
        calendar_method=invite.method if invite else "",
    )
