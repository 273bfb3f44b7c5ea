"""What the emails say: in the patient's language (Spanish unless the booking says
English), dates as that language writes them, and the typed name shown as text only."""

from datetime import UTC, datetime

import pytest
from httpx import AsyncClient

from clinic.clock import utcnow
from clinic.domain.email_content import EMAILED, compose_email, local_when
from clinic.mail import Email
from clinic.messages import BookingStatus, BookingStatusChanged, Language, RejectionCode
from clinic.store.documents import Booking

WHEN = datetime(2027, 6, 14, 8, 30, tzinfo=UTC)  # a Monday, 10:30 in Madrid
MARKUP = '<a href="https://evil.example">Pulse aquí</a>'


def email(
    status: BookingStatus = BookingStatus.CONFIRMED,
    language: Language = Language.ES,
    name: str = "José Ñúñez",
    code: RejectionCode | None = None,
) -> Email:
    event = BookingStatusChanged(
        booking_id="b-1",
        status=status,
        date=WHEN,
        doctor_name="Dra. Lucía García",
        reason="internal wording" if code else None,
        reason_code=code,
        occurred_at=utcnow(),
    )
    booking = Booking.model_construct(
        patient_name=name, patient_email="jose@example.com", date=WHEN, language=language
    )
    return compose_email(event, booking)


def test_spanish_is_the_default_with_the_date_as_spanish_writes_it() -> None:
    sent = email()
    assert sent.language == "es"
    when = "lunes, 14 de junio de 2027, 10:30 CEST (UTC+02:00)"
    assert sent.subject == f"Su cita está confirmada: {when}"
    assert sent.body.startswith(f"Su cita con Dra. Lucía García del {when} está confirmada.")
    assert '<html lang="es">' in sent.html


def test_english_when_the_booking_asks_for_it() -> None:
    sent = email(language=Language.EN)
    assert sent.language == "en"
    when = "Monday, June 14, 2027, 10:30 CEST (UTC+02:00)"
    assert sent.subject == f"Your appointment is confirmed: {when}"
    assert "Booked for: José Ñúñez" in sent.body
    assert '<html lang="en">' in sent.html


@pytest.mark.parametrize("language", list(Language))
def test_times_are_on_the_clinics_24_hour_clock_in_both_languages(language: Language) -> None:
    early = datetime(2027, 6, 14, 6, 5, tzinfo=UTC)  # 08:05 in Madrid
    assert local_when(early, language).endswith(", 08:05 CEST (UTC+02:00)")
    assert local_when(early.replace(hour=12), language).endswith(", 14:05 CEST (UTC+02:00)")


@pytest.mark.parametrize("language", list(Language))
def test_a_rejection_says_why_in_the_patients_language(language: Language) -> None:
    sent = email(BookingStatus.REJECTED, language, code=RejectionCode.SLOT_TAKEN)
    reason = {
        Language.ES: "Motivo: esa hora ya está reservada.",
        Language.EN: "Reason: that time is already booked.",
    }
    assert reason[language] in sent.body
    assert reason[language] in sent.html
    assert "internal wording" not in sent.body


@pytest.mark.parametrize("status", EMAILED)
@pytest.mark.parametrize("language", list(Language))
def test_the_typed_name_is_text_never_markup_and_never_first(
    status: BookingStatus, language: Language
) -> None:
    sent = email(status, language, name=MARKUP)
    assert MARKUP not in sent.html
    assert "&lt;a href=&#34;https://evil.example&#34;&gt;Pulse aquí&lt;/a&gt;" in sent.html
    assert "evil.example" not in sent.subject
    assert not sent.body.startswith(MARKUP)
    assert MARKUP in sent.body  # the text part shows it as typed, after the clinic's words


async def test_post_book_takes_english_or_spanish_and_refuses_other_languages(
    client: AsyncClient,
) -> None:
    body = {
        "patientName": "Ann Lee",
        "patientEmail": "ann@example.com",
        "date": "2030-06-17T08:00:00Z",
    }
    english = await client.post("/book", json={**body, "language": "en"})
    assert english.status_code == 202, english.text
    assert english.json()["language"] == "en"
    assert (await Booking.get(english.json()["id"])).language is Language.EN  # type: ignore[union-attr]
    default = await client.post("/book", json={**body, "date": "2030-06-17T08:30:00Z"})
    assert default.json()["language"] == "es"
    french = await client.post("/book", json={**body, "language": "fr"})
    assert french.status_code == 422
    assert await Booking.find_all().count() == 2
