"""The clinic's doctors in MongoDB."""

import time
from typing import Any

from pymongo.errors import DuplicateKeyError

from clinic.store.batching import Batched
from clinic.store.documents import Doctor


class DoctorExists(Exception):  # noqa: N818 - it names the situation, not an error kind
    """A doctor with this id is stored already."""


async def get(doctor_id: str) -> Doctor | None:
    """The doctor with this id, active or not; None if there is none."""
    return await Doctor.get(doctor_id)


async def listed(*, include_inactive: bool = False) -> list[Doctor]:
    """The doctors by id: the active ones, or all of them."""
    query = Doctor.find_all() if include_inactive else Doctor.find(Doctor.active == True)  # noqa: E712
    return await query.sort("_id").to_list()


async def add(doctor: Doctor) -> None:
    """Store a new doctor; ``DoctorExists`` if the id is taken."""
    _recent.clear()
    try:
        await doctor.insert()
    except DuplicateKeyError as exc:
        raise DoctorExists(doctor.id) from exc


async def change(doctor: Doctor, changes: dict[str, Any]) -> None:
    """Store ``changes`` to the doctor's fields (and apply them to ``doctor``)."""
    _recent.clear()
    await doctor.set(changes)


RECENT_SECONDS = 1.0
"""How old ``recently()``'s answer may be."""
_recent: dict[str, tuple[float, list[Doctor]]] = {}


async def recently() -> list[Doctor]:
    """Every doctor, as read at most ``RECENT_SECONDS`` ago (or since this process changed one).

    For checks that the booking worker makes again on fresh data: a booking asked
    for at the very second another process changes a doctor is still decided right.
    """
    read_at, known = _recent.get("all", (float("-inf"), []))
    if time.monotonic() - read_at > RECENT_SECONDS:
        known = await everyone()
        _recent["all"] = (time.monotonic(), known)
    return known


async def everyone() -> list[Doctor]:
    """Every doctor, active or not, by id; one read serves every caller waiting."""
    return await _everyone.run(None)


async def _read_everyone(callers: list[None]) -> list[list[Doctor] | BaseException]:
    # A clinic has tens of doctors: one read of them all answers every caller.
    # pymongo's cursor and pydantic's validation: Beanie's own find costs as much again.
    found = Doctor.get_pymongo_collection().find().sort("_id")
    doctors = [Doctor.model_validate(raw) async for raw in found]
    return [doctors] * len(callers)


_everyone: Batched[None, list[Doctor]] = Batched(_read_everyone)
