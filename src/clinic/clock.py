"""The clinic's clock: every stored or sent time comes from here."""

from datetime import UTC, datetime, timedelta


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC, to the millisecond (as MongoDB keeps it)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def later(seconds: float, now: datetime | None = None) -> datetime:
    """``seconds`` from ``now`` (the clock's), to the millisecond, so it compares equal
    once stored."""
    return (now or utcnow()) + timedelta(milliseconds=round(seconds * 1000))
