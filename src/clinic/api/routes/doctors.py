"""The clinic's doctors: patients list them and their free slots; staff manage them."""

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status

from clinic.api.deps import StaffOnly
from clinic.api.errors import STAFF, TOO_LARGE, UNAVAILABLE, refusals
from clinic.api.fields import Day
from clinic.api.schemas import (
    AvailabilityOut,
    DoctorChanges,
    DoctorList,
    DoctorOut,
    ErrorOut,
    NewDoctor,
    SlotOut,
)
from clinic.domain.availability import free_slots
from clinic.domain.scheduling import local_time
from clinic.settings import settings
from clinic.store import doctors
from clinic.store.documents import Doctor

NO_DOCTOR = "No doctor with this id."
MISSING: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": NO_DOCTOR}}
REFUSED = refusals("blank", "shift_order", "int_type")

router = APIRouter(prefix="/doctors", tags=["doctors"])
AnyDoctorId = Annotated[
    str, Path(max_length=63, description="The doctor's id.", examples=["dra-garcia"])
]


async def _doctor(doctor_id: str) -> Doctor:
    doctor = await doctors.get(doctor_id)
    if doctor is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NO_DOCTOR)
    return doctor


def _out(doctor: Doctor) -> DoctorOut:
    return DoctorOut.model_validate(doctor.model_dump(exclude={"revision_id"}))


@router.get("", response_model=DoctorList, responses=UNAVAILABLE, summary="List the doctors")
async def list_doctors(
    include_inactive: Annotated[
        bool, Query(alias="includeInactive", description="Also deactivated doctors.")
    ] = False,
) -> DoctorList:
    """The doctors patients can book, by id (with ``includeInactive``, all of them)."""
    listed = await doctors.listed(include_inactive=include_inactive)
    return DoctorList(doctors=[_out(d) for d in listed])


@router.get(
    "/{doctor_id}",
    response_model=DoctorOut,
    responses={**MISSING, **UNAVAILABLE},
    summary="One doctor",
)
async def get_doctor(doctor_id: AnyDoctorId) -> DoctorOut:
    """The doctor's details, working hours and slot length."""
    return _out(await _doctor(doctor_id))


@router.get(
    "/{doctor_id}/availability",
    response_model=AvailabilityOut,
    responses={**MISSING, **UNAVAILABLE},
    summary="A doctor's free slots on one day",
)
async def availability(
    doctor_id: AnyDoctorId,
    day: Annotated[
        Day,
        Query(
            alias="date",
            description="A day in the clinic's timezone, YYYY-MM-DD.",
            examples=["2030-06-17"],
        ),
    ],
) -> AvailabilityOut:
    """The slots of that local day that no pending or confirmed booking holds."""
    doctor = await _doctor(doctor_id)
    slots = [
        SlotOut(start=start, local_start=local_time(start).isoformat())
        for start in await free_slots(doctor, day)
    ]
    return AvailabilityOut(
        doctor_id=doctor.id, date=day.isoformat(), timezone=settings.timezone, slots=slots
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DoctorOut,
    dependencies=[StaffOnly],
    responses={
        409: {"model": ErrorOut, "description": "The id is taken."},
        **STAFF,
        **TOO_LARGE,
        **REFUSED,
        **UNAVAILABLE,
    },
    summary="Add a doctor (staff)",
)
async def add_doctor(doctor: NewDoctor) -> DoctorOut:
    """Add a doctor patients can book from now on."""
    stored = Doctor(**doctor.model_dump())
    try:
        await doctors.add(stored)
    except doctors.DoctorExists as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, "A doctor with this id exists.") from exc
    return _out(stored)


@router.patch(
    "/{doctor_id}",
    response_model=DoctorOut,
    dependencies=[StaffOnly],
    responses={**MISSING, **STAFF, **TOO_LARGE, **REFUSED, **UNAVAILABLE},
    summary="Change a doctor (staff)",
)
async def change_doctor(doctor_id: AnyDoctorId, changes: DoctorChanges) -> DoctorOut:
    """Change a doctor's details, hours or slot length; booked appointments stay booked."""
    doctor = await _doctor(doctor_id)
    await doctors.change(doctor, changes.model_dump(exclude_unset=True, exclude_none=True))
    return _out(doctor)


@router.delete(
    "/{doctor_id}",
    response_model=DoctorOut,
    dependencies=[StaffOnly],
    responses={**MISSING, **STAFF, **UNAVAILABLE},
    summary="Deactivate a doctor (staff)",
)
async def deactivate_doctor(doctor_id: AnyDoctorId) -> DoctorOut:
    """Stop new bookings with this doctor; booked appointments stay booked.

    The doctor stays, readable at its URL with ``active: false``: a PATCH with
    ``active: true`` takes them back.
    """
    doctor = await _doctor(doctor_id)
    await doctors.change(doctor, {"active": False})
    return _out(doctor)
