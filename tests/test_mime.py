"""Each email as a mail client reads it: the standard library's email parser, the judge
of the messages ``clinic.mail.mime`` writes itself, finds the headers, the parts and
every word written, and nothing it calls a defect, whatever a name or a subject holds.
"""

import re
from base64 import b64decode
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clinic.mail import Email, EmailRefused
from clinic.mail.mime import MessageWriter
from clinic.messages import BookingStatus, Language
from tests.test_email_content import email as composed

CLINIC = "Clínica Ejemplo <citas@clinic.test>"
HEADERS = ["From", "To", "Subject", "Date", "Message-ID", "MIME-Version"]
CHARACTERS = st.one_of(
    st.sampled_from('\r\n\t\x00\x0b\x85\u2028 .=?_"<>;:ñé€𝄞'),
    st.characters(exclude_categories=["Cs"]),
)
HOSTILE = st.text(CHARACTERS, max_size=300)
SOME = st.text(CHARACTERS, min_size=1, max_size=300)  # an empty HTML or invite is none
ATEXT = st.sampled_from("abcxyz0189!#$%&'*+-/=?^_`{|}~ñé")
ADDRESSES = st.builds(
    "{}@{}.{}".format,
    st.text(ATEXT, min_size=1, max_size=20),
    st.text(ATEXT, min_size=1, max_size=20),
    st.sampled_from(["es", "example", "clínica"]),
)


def read(data: bytes) -> EmailMessage:
    """``data`` as a mail client reads it, after checking that no part has a defect and
    that every line keeps to RFC 5322's length (the To line may hold a longer address)."""
    message = message_from_bytes(data, policy=policy.default)
    assert [part.defects for part in message.walk()] == [[] for _ in message.walk()]
    assert data.endswith(b"\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert all(len(line) <= 78 for line in data.split(b"\r\n") if not line.startswith(b"To:"))
    return message


def encoded_words(data: bytes) -> list[str]:
    """The encoded words of the message's headers, each decoded on its own: RFC 2047 asks
    that each hold whole characters, and some mail clients decode them one by one."""
    head = data.partition(b"\r\n\r\n")[0].decode()
    return [b64decode(word).decode() for word in re.findall(r"=\?utf-8\?b\?(.*?)\?=", head)]


def written(text: str) -> str:
    """What a mail client shows of ``text``: its lines, each ended with one kind of break."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n")
    return lines if lines.endswith("\n") else lines + "\n"


def content(part: EmailMessage) -> str:
    return cast(str, part.get_content()).replace("\r\n", "\n")


@pytest.mark.parametrize("status", [BookingStatus.CONFIRMED, BookingStatus.REJECTED])
@pytest.mark.parametrize("language", list(Language))
def test_an_email_reads_back_with_its_headers_its_words_and_its_invite(
    status: BookingStatus, language: Language
) -> None:
    email = composed(status, language)
    message = read(MessageWriter(CLINIC).message(email).data)

    assert list(message.keys()) == [*HEADERS, "Content-Language", "Content-Type"]
    assert message["From"] == CLINIC
    assert message["To"] == "jose@example.com"
    assert message["Subject"] == email.subject
    assert message["Message-ID"] == f"<b-1.{status.value}@clinic.test>"
    assert message["Content-Language"] == language.value
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None
    assert html is not None
    assert content(cast(EmailMessage, text)) == written(email.body)
    assert content(cast(EmailMessage, html)) == written(email.html)
    attachments = list(message.iter_attachments())
    if status is BookingStatus.CONFIRMED:
        (invite,) = attachments
        assert invite.get_filename() == "invite.ics"
        assert invite.get_content_type() == "text/calendar"
        assert invite.get_param("method") == "REQUEST"
        assert invite.get_content() == email.calendar  # its CRLFs kept
    else:
        assert attachments == []  # a rejection has nothing for the calendar


@settings(max_examples=300, deadline=None)
@given(subject=HOSTILE, body=HOSTILE, html=SOME, invite=SOME, to=ADDRESSES)
def test_whatever_the_words_hold_the_email_reads_back_as_written(
    subject: str, body: str, html: str, invite: str, to: str
) -> None:
    email = Email(
        to=to,
        subject=subject,
        body=body,
        booking_id="b-1",
        reference="b-1.confirmed",
        html=html,
        calendar=invite,
        calendar_method="REQUEST",
    )
    written_out = MessageWriter(CLINIC).message(email)
    message = read(written_out.data)

    # A line break in the subject cannot start a header of its own (a Bcc, say).
    assert list(message.keys()) == [*HEADERS, "Content-Type"]
    shown = " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", subject).split())
    assert message["Subject"] == shown
    assert "".join(encoded_words(written_out.data)) in ("", shown)
    assert message["To"] == to
    assert written_out.data.isascii() is not written_out.international
    parts = {part.get_content_type(): part for part in message.walk()}
    assert content(parts["text/plain"]) == written(body)
    assert content(parts["text/html"]) == written(html)
    attachment = next(message.iter_attachments())
    assert attachment.get_content() == invite


@pytest.mark.parametrize(
    "subject",
    ["Su cita =?utf-8?b?SGFja2Vk?= mañana", "Your appointment =?utf-8?q?moved?=", "x" * 200],
)
def test_a_subject_that_looks_encoded_or_will_not_fold_reads_back_as_written(
    subject: str,
) -> None:
    email = Email(to="ana@example.com", subject=subject, body="Hola", booking_id="b-1")
    assert read(MessageWriter(CLINIC).message(email).data)["Subject"] == subject


def test_a_plain_email_is_one_part_and_ascii() -> None:
    email = Email(to="ana@example.com", subject="Recordatorio", body="Hola", booking_id="b-1")
    written_out = MessageWriter("citas@clinic.test").message(email)
    message = read(written_out.data)

    assert message.get_content_type() == "text/plain"
    assert content(message) == "Hola\n"
    assert message["Subject"] == "Recordatorio"
    assert re.fullmatch(r"<[^@>]+@clinic\.test>", message["Message-ID"])
    assert (written_out.sender, written_out.recipient) == ("citas@clinic.test", "ana@example.com")
    assert not written_out.international


def test_an_international_address_asks_for_smtputf8() -> None:
    email = Email(to="josé@ejemplo.es", subject="Cita", body="Hola", booking_id="b-1")
    written_out = MessageWriter(CLINIC).message(email)

    assert written_out.international
    assert read(written_out.data)["To"] == "josé@ejemplo.es"


@pytest.mark.parametrize(
    "address",
    ["ana ruiz@example.com", "ana@example.com\r\nBcc: x@evil.example", "<ana@example.com>", "ana"],
)
def test_an_address_no_header_can_hold_is_refused_for_good(address: str) -> None:
    email = Email(to=address, subject="Cita", body="Hola", booking_id="b-1")
    with pytest.raises(EmailRefused, match="permanent") as refused:
        MessageWriter(CLINIC).message(email)
    assert "ana" not in str(refused.value)
