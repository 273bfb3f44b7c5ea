"""The yardstick for ``POST /book``: FastAPI validating the same body, doing nothing else."""

from fastapi import FastAPI, status

from clinic.api.schemas import BookingRequest

app = FastAPI()


@app.post("/book", status_code=status.HTTP_202_ACCEPTED)
async def book(request: BookingRequest) -> dict[str, str]:
    """Validate the body and accept it."""
    return {"status": "pending", "patientName": request.patient_name}
