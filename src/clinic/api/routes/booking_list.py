"""Staff list the clinic's bookings, filtered and paginated."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from clinic.api.deps import StaffMember
from clinic.api.errors import STAFF, UNAVAILABLE
from clinic.api.fields import AppointmentDate
from clinic.api.privacy import audit_read
from clinic.api.schemas import BookingList, BookingOut, ErrorOut
from clinic.messages import BookingStatus
from clinic.store.doctor_profile import DoctorId
from clinic.store.listing import BadCursor, BookingFilter, list_page

router = APIRouter(tags=["bookings"])


@router.get(
    "/bookings",
    response_model=BookingList,
    response_model_exclude_none=True,
    responses={
        400: {"model": ErrorOut, "description": "The cursor is not one this API gave out."},
        **STAFF,
        **UNAVAILABLE,
    },
    summary="List bookings, newest first (staff)",
)
async def list_bookings(
    staff: StaffMember,
    limit: Annotated[int, Query(ge=1, le=100, description="Bookings per page.")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=300, description="`next` of the previous page.")
    ] = None,
    booking_status: Annotated[
        BookingStatus | None, Query(alias="status", description="Only bookings in this status.")
    ] = None,
    doctor_id: Annotated[
        DoctorId | None, Query(alias="doctorId", description="Only this doctor's bookings.")
    ] = None,
    date_from: Annotated[
        AppointmentDate | None, Query(alias="from", description="Appointments at or after.")
    ] = None,
    date_to: Annotated[
        AppointmentDate | None, Query(alias="to", description="Appointments before.")
    ] = None,
    patient_email: Annotated[
        str | None, Query(alias="patientEmail", max_length=320, description="Exact address.")
    ] = None,
) -> BookingList:
    """A page of matching bookings, newest first; ``count`` is how many match in all.

    Pass the answer's ``next`` as ``cursor`` for the following page; there is no
    ``next`` on the last one.
    """
    where = BookingFilter(booking_status, doctor_id, date_from, date_to, patient_email)
    filters: dict[str, object] = {
        "status": booking_status,
        "doctorId": doctor_id,
        "from": date_from,
        "to": date_to,
        "patientEmail": patient_email,
        "cursor": "given" if cursor else None,
    }
    audit_read(staff, "the booking list", filters)
    try:
        total, page, after = await list_page(where, limit, cursor)
    except BadCursor as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "This cursor is not valid.") from exc
    return BookingList(count=total, bookings=[BookingOut.of(b) for b in page], next=after)
