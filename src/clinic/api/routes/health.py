"""Liveness and readiness, for orchestrators."""

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse

from clinic.api.deps import Broker, MongoClient
from clinic.api.schemas import HealthOut
from clinic.settings import settings
from clinic.store.database import database_is_up

router = APIRouter(tags=["health"])


@router.get(
    "/health", response_model=HealthOut, response_model_exclude_none=True, summary="Liveness"
)
async def health() -> HealthOut:
    """The API process is up."""
    return HealthOut(status="ok")


@router.get(
    "/ready",
    response_model=HealthOut,
    response_model_exclude_none=True,
    responses={503: {"model": HealthOut, "description": "A dependency is down."}},
    summary="Readiness",
)
async def ready(mongo: MongoClient, broker: Broker) -> JSONResponse:
    """Whether the broker and the database both answer; 503 when either is down."""
    broker_up = await broker.ping(timeout=settings.mongo_timeout)
    database_up = await database_is_up(mongo)
    body = HealthOut(
        status="ready" if broker_up and database_up else "unavailable",
        broker="up" if broker_up else "down",
        database="up" if database_up else "down",
    )
    code = status.HTTP_200_OK if broker_up and database_up else status.HTTP_503_SERVICE_UNAVAILABLE
    return JSONResponse(body.model_dump(exclude_none=True), status_code=code)
