"""One patient, one key, however they write their email address."""

_SAME_MAILBOX_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}
"""Domains whose mailboxes ignore dots in the local part, and their one spelling."""


def email_key(email: str) -> str:
    """The address as its mailbox knows it: lowercase, without a ``+tag``.

    ``Juan.Perez+clinic@GMail.com`` and ``juanperez@gmail.com`` reach one
    mailbox, so they count as one patient for limits, search and erasure.
    """
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in _SAME_MAILBOX_DOMAINS:
        local = local.replace(".", "")
        domain = _SAME_MAILBOX_DOMAINS[domain]
    return f"{local}@{domain}"
