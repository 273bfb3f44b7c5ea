"""The seed file of doctors (``CLINIC_DOCTORS_FILE``), added at startup if missing."""

import json
import logging
from pathlib import Path

from pydantic import TypeAdapter

from clinic.api.schemas import NewDoctor
from clinic.store import doctors
from clinic.store.documents import Doctor

log = logging.getLogger("clinic.doctors")

_SEED = TypeAdapter(list[NewDoctor])


def read_seed(path: Path) -> list[NewDoctor]:
    """The doctors in a seed file: a JSON list of doctors, as ``POST /doctors`` takes them."""
    return _SEED.validate_python(json.loads(path.read_text(encoding="utf-8")))


async def seed_doctors(path: Path) -> int:
    """Add the seed file's doctors that the database does not have yet; how many were added.

    Doctors already stored are left as they are: staff may have changed them since.
    """
    added = 0
    for doctor in read_seed(path):
        try:
            await doctors.add(Doctor(**doctor.model_dump()))
        except doctors.DoctorExists:
            continue
        added += 1
    if added:
        log.info("added %d doctor(s) from %s", added, path)
    return added
