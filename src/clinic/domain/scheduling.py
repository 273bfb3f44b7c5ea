"""When a doctor can be booked: working hours and slots, in the clinic's timezone.

Appointment times are stored in UTC; working hours are local times of
``CLINIC_TIMEZONE``. A slot starts at a shift's opening time plus a whole number
of slot lengths, and must end by the shift's close. On a daylight-saving day,
local times that do not exist (the skipped hour) are no slots, and a repeated
local hour is offered once (its first occurrence).
"""

from datetime import UTC, date, datetime, timedelta

from clinic.messages import RejectionCode
from clinic.settings import settings
from clinic.store.doctor_profile import WEEKDAYS, minutes_of
from clinic.store.documents import Doctor


def local_time(moment: datetime) -> datetime:
    """``moment`` in the clinic's timezone."""
    return moment.astimezone(settings.zone)


def slot_problem(doctor: Doctor, start: datetime) -> RejectionCode | None:
    """Why ``doctor`` cannot see a patient at ``start``; None when it is one of their slots."""
    if not doctor.active:
        return RejectionCode.DOCTOR_UNAVAILABLE
    local = local_time(start)
    minute = local.hour * 60 + local.minute
    shifts = doctor.working_hours.get(WEEKDAYS[local.weekday()], [])
    for opens, closes in shifts:
        begin, end = minutes_of(opens), minutes_of(closes)
        if begin <= minute < end:
            on_boundary = (minute - begin) % doctor.slot_minutes == 0
            exact = local.second == 0 and local.microsecond == 0
            fits = minute + doctor.slot_minutes <= end
            return None if on_boundary and exact and fits else RejectionCode.NOT_ON_SLOT_BOUNDARY
    return RejectionCode.OUTSIDE_WORKING_HOURS


def _from_local(day: date, minute: int) -> datetime | None:
    """The UTC moment of local ``day`` at ``minute`` past midnight; None if it never happens."""
    naive = datetime.combine(day, datetime.min.time()) + timedelta(minutes=minute)
    moment = naive.replace(tzinfo=settings.zone).astimezone(UTC)
    # A time in the skipped hour of a daylight-saving change comes back different.
    return moment if local_time(moment).replace(tzinfo=None) == naive else None


def day_slots(doctor: Doctor, day: date) -> list[datetime]:
    """Every slot of ``doctor`` on local ``day``, as UTC start times, earliest first."""
    if not doctor.active:
        return []
    starts: set[datetime] = set()
    for opens, closes in doctor.working_hours.get(WEEKDAYS[day.weekday()], []):
        last = minutes_of(closes) - doctor.slot_minutes
        for minute in range(minutes_of(opens), last + 1, doctor.slot_minutes):
            if (start := _from_local(day, minute)) is not None:
                starts.add(start)
    return sorted(starts)


def local_day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC instants at which local ``day`` starts and ends."""
    start = datetime.combine(day, datetime.min.time(), settings.zone)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), settings.zone)
    return start.astimezone(UTC), end.astimezone(UTC)
