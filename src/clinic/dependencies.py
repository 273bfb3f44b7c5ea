"""``Annotated`` dependency aliases for the API's routes."""

from typing import Annotated

from fastapi import Depends, Request
from pymongo import AsyncMongoClient


def _mongo_client(request: Request) -> AsyncMongoClient[dict[str, object]]:
    client: AsyncMongoClient[dict[str, object]] = request.app.state.mongo
    return client


MongoClient = Annotated[AsyncMongoClient[dict[str, object]], Depends(_mongo_client)]
