"""Keeping patient data out of logs, headers and errors.

A client controls parts of what gets logged (the request line, say), so every
function here runs in time linear in its input, and logs cut their lines to a
bounded length before masking them.
"""

import re

from pydantic import ValidationError
from pymongo.errors import OperationFailure

MAX_MESSAGE = 2000
"""Characters of a log message, or of an error's text, that are kept."""

# Characters that end a word in a log line: spaces, URL and JSON punctuation.
# One character class, matched at most once per character: no backtracking.
_SEPARATORS = re.compile(r"""[\s/?&=:"',;<>()\[\]{}|\\]+""")


def mask_email(email: str) -> str:
    """``juan.perez@example.com`` -> ``j***@example.com``: enough to tell patients apart."""
    local, at, domain = email.partition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_emails(text: str) -> str:
    """``text`` with every word that holds an ``@`` (or ``%40``) masked as an email address."""
    if "@" not in text and "%40" not in text.upper():
        return text  # nearly every line: one scan, nothing copied
    masked: list[str] = []
    position = 0
    for separator in _SEPARATORS.finditer(text):
        masked.append(_masked_word(text[position : separator.start()]))
        masked.append(separator[0])
        position = separator.end()
    masked.append(_masked_word(text[position:]))
    return "".join(masked)


def _masked_word(word: str) -> str:
    if "@" in word:
        return mask_email(word)
    at = word.upper().find("%40")
    if at >= 0:
        return mask_email(f"{word[:at]}@{word[at + 3 :]}")
    return word


def shorten(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` cut to ``limit`` characters, saying how many were left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters]"


def error_summary(exc: BaseException) -> str:
    """What went wrong, for a log line or a parked message's header, with no patient data.

    A database error's text quotes the documents it failed on (a duplicate key,
    a bulk write), a validation error's the input, and any library's error may
    quote a value it was given: only their kind, and what was wrong, are kept.
    The text is kept for the clinic's own errors and the network's, which name
    ids and hosts, never a patient; it is cut to size and masked all the same.
    """
    kind = type(exc).__name__
    if isinstance(exc, ValidationError):
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False, include_context=False)
        )
        return shorten(f"{kind}: {problems}")
    if isinstance(exc, OperationFailure):
        return f"{kind}: database error code {exc.code}"
    if isinstance(exc, OSError) or type(exc).__module__.startswith(_TELLING_MODULES):
        return mask_emails(shorten(f"{kind}: {exc}"))
    return kind


# Whose errors' texts say what failed without quoting data: ours, the drivers' (but
# OperationFailure, above) and the broker clients', whose texts name hosts and queues.
_TELLING_MODULES = ("clinic.", "pymongo.", "aio_pika.", "aiormq.", "pamqp.", "faststream.")
