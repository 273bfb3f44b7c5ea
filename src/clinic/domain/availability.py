"""Which of a doctor's slots are still free to book."""

from datetime import date, datetime

from clinic.domain.scheduling import day_slots, local_day_bounds
from clinic.store import bookings, slots
from clinic.store.documents import Doctor


async def free_slots(doctor: Doctor, day: date) -> list[datetime]:
    """The doctor's slots on local ``day`` that no pending or confirmed booking asks for."""
    start, end = local_day_bounds(day)
    held = await slots.held_between(doctor.id, start, end)
    # A pending booking has not claimed its slot yet, but asks for it.
    held |= set(await bookings.pending_between(doctor.id, start, end))
    return [slot for slot in day_slots(doctor, day) if slot not in held]
