"""The clinic's doctors: the seed file, and which of their slots are still free."""

import json
import logging
from datetime import date, datetime
from pathlib import Path

from pydantic import TypeAdapter
from pymongo.errors import DuplicateKeyError

from clinic.messages import BookingStatus
from clinic.models import Booking, Doctor, SlotClaim
from clinic.scheduling import day_slots, local_day_bounds
from clinic.schemas import NewDoctor

log = logging.getLogger("clinic.doctors")

_SEED = TypeAdapter(list[NewDoctor])


def read_seed(path: Path) -> list[NewDoctor]:
    """The doctors in a seed file (a JSON list, as in doctors.example.json)."""
    return _SEED.validate_python(json.loads(path.read_text(encoding="utf-8")))


async def seed_doctors(path: Path) -> int:
    """Add the seed file's doctors that the database does not have yet; how many were added.

    Doctors already stored are left as they are: staff may have changed them since.
    """
    added = 0
    for doctor in read_seed(path):
        try:
            await Doctor(**doctor.model_dump()).insert()
        except DuplicateKeyError:
            continue
        added += 1
    if added:
        log.info("added %d doctor(s) from %s", added, path)
    return added


async def free_slots(doctor: Doctor, day: date) -> list[datetime]:
    """The doctor's slots on local ``day`` that no pending or confirmed booking asks for."""
    start, end = local_day_bounds(day)
    held = {
        claim.start
        for claim in await SlotClaim.find(
            SlotClaim.doctor_id == doctor.id, SlotClaim.start >= start, SlotClaim.start < end
        ).to_list()
    }
    asked = await Booking.find(
        Booking.doctor_id == doctor.id,
        Booking.date >= start,
        Booking.date < end,
        Booking.status == BookingStatus.PENDING,
        hint="list_by_date",  # the day's bookings: a clinic's day is small
    ).to_list()
    held |= {booking.date for booking in asked}
    return [slot for slot in day_slots(doctor, day) if slot not in held]
