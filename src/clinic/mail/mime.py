"""An email as the bytes an SMTP server takes: an RFC 5322 message in MIME (RFC 2045-2049).

The words in plain text and in HTML are alternatives of each other, and so is the
calendar invite, which mail clients offer to add to the calendar; the invite is
also attached as ``invite.ics``, for the clients that only show attachments.

Every email has the same shape, so it is written out directly rather than built as
a tree of the standard library's ``EmailMessage`` and flattened: that parses each
header it is given and folds it again on the way out, and was most of what the
notification worker did (docs/performance.md). Each piece is still encoded by the
standard library: the text as quoted-printable, the invite as base64, non-ASCII in
the subject as RFC 2047 encoded words, and the From header once, at startup.
Everything but an international address (RFC 6532) is 7-bit ASCII, so any server
takes it; lines end in CRLF and none is longer than 78 characters.
"""

import re
from binascii import b2a_base64, b2a_qp
from dataclasses import dataclass
from email import policy
from email.headerregistry import Address
from email.utils import format_datetime, make_msgid
from uuid import uuid4

from clinic.clock import utcnow
from clinic.mail.lines import character_boundary, one_kind_of_line_break
from clinic.mail.outgoing import Email, EmailRefused

_ATEXT = r"[^\x00-\x20\x7f()<>\[\]:;@\\,.\"]+"
ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@{_ATEXT}(?:\.{_ATEXT})*")
"""An address written as itself in a header: dot-atoms (RFC 5322 3.4.1), in UTF-8 for an
international one. It is every address the API takes; nothing in it can end a header."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LINE = 78
"""The longest line RFC 5322 (2.1.1) asks for, without its CRLF."""
_WORD_BYTES = 39
"""UTF-8 bytes in one encoded word: 52 characters of base64, 64 with the word's marks,
so that ``Subject:`` and one word fit in a line (RFC 2047 asks for at most 76)."""


@dataclass(frozen=True)
class Message:
    """One email as SMTP sends it: the envelope's addresses and the message's bytes."""

    sender: str
    recipient: str
    data: bytes
    international: bool
    """The message holds a UTF-8 address: only a server offering SMTPUTF8 takes it."""


class MessageWriter:
    """Writes the clinic's emails as MIME messages from ``sender`` (``CLINIC_EMAIL_FROM``)."""

    def __init__(self, sender: str) -> None:
        # Parsed and folded once, by the standard library: the same From heads every
        # email, and the setting may hold any display name.
        header = policy.default.header_factory("From", sender)
        self._from = {
            international: header.fold(policy=fold_policy).encode()
            for international, fold_policy in ((False, policy.SMTP), (True, policy.SMTPUTF8))
        }
        address: Address = header.addresses[0]
        self._sender = address.addr_spec
        self._domain = address.domain or "localhost"

    def message(self, email: Email) -> Message:
        """``email`` as an RFC 5322 message from the clinic.

        Raises ``EmailRefused`` for an address that cannot be written in a header,
        which the API never takes: no server could deliver it.
        """
        if not ADDRESS.fullmatch(email.to):
            raise EmailRefused("the address cannot be written in an email, permanent")
        international = not (email.to.isascii() and self._sender.isascii())
        message_id = (
            f"<{email.reference}@{self._domain}>"
            if email.reference
            else make_msgid(domain=self._domain)
        )
        head = [
            self._from[international],
            f"To: {email.to}\r\n".encode(),
            _subject(email.subject),
            f"Date: {format_datetime(utcnow())}\r\n".encode(),
            f"Message-ID: {message_id}\r\n".encode(),
            b"MIME-Version: 1.0\r\n",
        ]
        if email.language:
            head.append(f"Content-Language: {email.language}\r\n".encode())
        data = b"".join(head) + _content(email)
        return Message(self._sender, email.to, data, international)


def _content(email: Email) -> bytes:
    """The message's Content-Type header, a blank line and its body: the text alone, or
    the text and its alternatives, and the invite attached."""
    text = _text_part("plain", email.body)
    if not (email.html or email.calendar):
        return text
    alternatives = [text]
    if email.html:
        alternatives.append(_text_part("html", email.html))
    if not email.calendar:
        return _multipart("alternative", alternatives)
    # One encoding of the invite, for its two parts.
    invite = _base64(email.calendar.encode())
    alternatives.append(_calendar_part(invite, email.calendar_method, attached=False))
    attachment = _calendar_part(invite, email.calendar_method, attached=True)
    return _multipart("mixed", [_multipart("alternative", alternatives), attachment])


def _multipart(subtype: str, parts: list[bytes]) -> bytes:
    # No part can hold a random UUID, and "=_" cannot appear in quoted-printable or
    # base64: nothing to check.
    boundary = f"=_{uuid4().hex}".encode()
    delimiter = b"\r\n--" + boundary + b"\r\n"
    return b"".join(
        (
            b"Content-Type: multipart/" + subtype.encode() + b';\r\n boundary="' + boundary,
            b'"\r\n\r\n--' + boundary + b"\r\n",
            delimiter.join(parts),
            b"\r\n--" + boundary + b"--\r\n",
        )
    )


def _text_part(subtype: str, text: str) -> bytes:
    # One kind of line break in, so that each comes out as one CRLF, and the last line
    # ended, as the standard library's parts end; quoted-printable keeps the lines
    # short and the text readable, whatever characters it holds.
    lines = one_kind_of_line_break(text)
    if not lines.endswith("\n"):
        lines += "\n"
    body = b2a_qp(lines.encode(), istext=True).replace(b"\n", b"\r\n")
    return (
        b"Content-Type: text/" + subtype.encode() + b'; charset="utf-8"\r\n'
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + body
    )


def _base64(data: bytes) -> bytes:
    """``data`` in base64, in lines of 76 characters ended by CRLF (RFC 2045 6.8)."""
    lines = (b2a_base64(data[at : at + 57]) for at in range(0, len(data), 57))
    return b"".join(lines).replace(b"\n", b"\r\n")


def _calendar_part(invite: bytes, method: str, attached: bool) -> bytes:
    # As base64 (``invite`` is encoded already), so that the invite's lines keep the
    # CRLF endings RFC 5545 asks for.
    head = f'Content-Type: text/calendar; charset="utf-8"; method="{method}"'
    if attached:
        head += ';\r\n name="invite.ics"\r\nContent-Disposition: attachment; filename="invite.ics"'
    return head.encode() + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + invite


def _subject(subject: str) -> bytes:
    """The Subject header: its words folded into short lines, or, if any is not ASCII, is
    too long for a line or would be read as an encoded word, the whole subject as
    encoded words."""
    words = _CONTROL.sub(" ", subject).split()
    if all(_plain(word) for word in words):
        lines, line = [], "Subject:"
        for word in words:
            if len(line) + 1 + len(word) > _LINE:
                lines.append(line)
                line = ""
            line += " " + word
        return "\r\n".join([*lines, line]).encode() + b"\r\n"
    # Whitespace between encoded words is dropped when they are read: the spaces go
    # inside them, and each word ends on a whole character.
    data = " ".join(words).encode()
    chunks, start = [], 0
    while start < len(data):
        end = character_boundary(data, min(start + _WORD_BYTES, len(data)))
        chunks.append(b"=?utf-8?b?" + b2a_base64(data[start:end], newline=False) + b"?=")
        start = end
    return b"Subject: " + b"\r\n ".join(chunks) + b"\r\n"


def _plain(word: str) -> bool:
    """``word`` can go in the Subject as it is, and reads back as itself."""
    return word.isascii() and len(word) <= _LINE - len("Subject: ") and "=?" not in word
