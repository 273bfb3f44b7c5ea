"""Masking of patient data before it reaches a log line."""


def mask_email(email: str) -> str:
    """``juan.perez@example.com`` -> ``j***@example.com``: enough to tell patients apart."""
    local, at, domain = email.partition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"
