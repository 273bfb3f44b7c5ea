"""The MongoDB connection, shared by the API and the workers."""

import logging

from beanie import init_beanie
from pymongo import AsyncMongoClient
from pymongo.errors import ConnectionFailure, PyMongoError

from clinic.settings import settings
from clinic.store.documents import (
    DOCUMENT_MODELS,
    DUE,
    OBSOLETE_INDEXES,
    REQUEST_DUE,
    Booking,
    OutboxRecord,
)
from clinic.store.patients import key_older_bookings

log = logging.getLogger("clinic.database")

# The errors that mean "the database is not answering": no connection, no server
# selected, a network or pool timeout (pymongo's ConnectionFailure covers each). The
# API turns them into a 503; any other database error is a bug or bad data, a 500.
DatabaseUnavailable = ConnectionFailure


async def connect_database(*, create_indexes: bool = True) -> AsyncMongoClient[dict[str, object]]:
    """Connect to MongoDB and register the clinic's documents.

    The API creates the indexes at startup. The workers do not: a restarted worker
    must not wait for index builds on a busy database. No double booking needs
    more than the ``_id``; the API's unique ``one_slot_per_booking`` index adds
    that a redelivered booking never holds a second slot.
    """
    timeout_ms = round(settings.mongo_timeout * 1000)
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        settings.mongo_url,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=max(timeout_ms * 5, 10_000),
        maxPoolSize=settings.mongo_pool_size,
        waitQueueTimeoutMS=max(timeout_ms * 5, 10_000),
    )
    await init_beanie(
        database=client[settings.mongo_db],
        document_models=DOCUMENT_MODELS,
        skip_indexes=not create_indexes,
    )
    if create_indexes:
        await drop_obsolete_indexes(client)
        if keyed := await key_older_bookings():
            log.info("gave %d older bookings their patient_email_key", keyed)
    return client


async def drop_obsolete_indexes(client: AsyncMongoClient[dict[str, object]]) -> None:
    """Drop the indexes earlier versions created and nothing uses: each one slows every write."""
    database = client[settings.mongo_db]
    for collection, names in OBSOLETE_INDEXES.items():
        existing = await database[collection].index_information()
        for name in names:
            if name in existing:
                await database[collection].drop_index(name)
                log.info("dropped the index %s.%s, which nothing uses any more", collection, name)


async def relay_indexes_exist() -> bool:
    """Whether the indexes the outbox relay names in its reads exist (the API creates them).

    A read hinting a missing index fails, so until the API has created them on a
    new database the relay has nothing to read with (and nothing to send yet).
    """
    for model, name in ((Booking, REQUEST_DUE), (OutboxRecord, DUE)):
        if name not in await model.get_pymongo_collection().index_information():
            return False
    return True


async def database_is_up(client: AsyncMongoClient[dict[str, object]]) -> bool:
    """Whether MongoDB answers a ping right now."""
    try:
        await client.admin.command("ping")
    except PyMongoError:
        return False
    return True
