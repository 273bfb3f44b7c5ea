"""The MongoDB connection, shared by the API and the workers."""

from beanie import init_beanie
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from clinic.models import DOCUMENT_MODELS
from clinic.settings import settings

# The errors that mean "the database is not answering": the API turns them into 503,
# the workers into a retry.
DatabaseUnavailable = PyMongoError


async def connect_database(*, create_indexes: bool = True) -> AsyncMongoClient[dict[str, object]]:
    """Connect to MongoDB and register the clinic's documents.

    The API creates the indexes at startup. The workers do not: a restarted worker
    must not wait for index builds on a busy database, and none of their guarantees
    rests on a secondary index (every uniqueness they rely on is the ``_id``'s).
    """
    timeout_ms = round(settings.mongo_timeout * 1000)
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        settings.mongo_url,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=max(timeout_ms * 5, 10_000),
    )
    await init_beanie(
        database=client[settings.mongo_db],
        document_models=DOCUMENT_MODELS,
        skip_indexes=not create_indexes,
    )
    return client


async def database_is_up(client: AsyncMongoClient[dict[str, object]]) -> bool:
    """Whether MongoDB answers a ping right now."""
    try:
        await client.admin.command("ping")
    except PyMongoError:
        return False
    return True
