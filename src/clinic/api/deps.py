"""``Annotated`` dependency aliases for the API's routes."""

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from faststream.rabbit import RabbitBroker
from pymongo import AsyncMongoClient

from clinic.messaging.broker import Publishers
from clinic.settings import settings


# The providers are async: FastAPI runs a plain function in a thread on every request.
async def _mongo_client(request: Request) -> AsyncMongoClient[dict[str, object]]:
    client: AsyncMongoClient[dict[str, object]] = request.app.state.mongo
    return client


MongoClient = Annotated[AsyncMongoClient[dict[str, object]], Depends(_mongo_client)]


async def _broker(request: Request) -> RabbitBroker:
    broker: RabbitBroker = request.app.state.broker
    return broker


Broker = Annotated[RabbitBroker, Depends(_broker)]
"""The API's broker."""


async def _publishers(request: Request) -> Publishers:
    publishers: Publishers = request.app.state.publishers
    return publishers


Publish = Annotated[Publishers, Depends(_publishers)]
"""The publishers of the API's broker."""


_bearer = HTTPBearer(auto_error=False, description="A staff token from CLINIC_STAFF_TOKENS.")


async def _staff(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The staff token presented; 401 without one, 403 with a wrong one."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Staff only: send Authorization: Bearer <staff token>.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    given = credentials.credentials.encode()
    # Compared with every token, in constant time, so timing tells nothing.
    matches = [hmac.compare_digest(given, t.encode()) for t in settings.staff_token_list]
    if not any(matches):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "This staff token is not valid.")
    return credentials.credentials


StaffOnly = Depends(_staff)
"""Route dependency: the caller must present a staff token."""
