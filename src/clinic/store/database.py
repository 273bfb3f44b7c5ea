"""The MongoDB connection, shared by the API and the workers."""

import logging
from typing import Any

from beanie import init_beanie
from pymongo import AsyncMongoClient
from pymongo.errors import ConnectionFailure, PyMongoError

from clinic.settings import settings
from clinic.store.documents import DOCUMENT_MODELS, OBSOLETE_INDEXES
from clinic.store.patients import key_older_bookings

log = logging.getLogger("clinic.database")

# The errors that mean "the database is not answering": no connection, no server
# selected, a network or pool timeout (pymongo's ConnectionFailure covers each). The
# API turns them into a 503; any other database error is a bug or bad data, a 500.
DatabaseUnavailable = ConnectionFailure

REPLICA_SET_OPTIONS: dict[str, Any] = {
    # A write counts once a majority of the replica set has it, so a stored booking
    # (and its 202) survives the loss of the primary. Said here, not left to the
    # server's default, which is w:1 on a replica set with an arbiter.
    "w": "majority",
    # Every read the clinic makes is by key or range, with no side effect: safe to
    # send once more to the new primary after an election. (pymongo's default; said
    # here so that nobody turns it off by accident.)
    "retryReads": True,
}
"""What the clinic needs of a MongoDB replica set, in one place.

Retryable writes stay as the URL says (``retryWrites``, on unless turned off): the
single-document writes (inserts, the outbox's ``update_one`` leases) are then sent
again after an election, and the rest (the batched ``update_many`` of decisions, the
outbox's sent marks, the relay's settled requests) are steps a worker repeats when its
message is retried, or the relay at its next scan.

The election window (about 10 to 12 seconds by MongoDB's defaults): server selection
waits up to ``CLINIC_MONGO_TIMEOUT``, so during an election the API answers 503, which
a client retries with its Idempotency-Key, and a worker's message goes to its retry
queue; ``CLINIC_RETRY_DELAY`` × ``CLINIC_MAX_RETRIES`` (30 s) outlasts it.
"""


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
        **REPLICA_SET_OPTIONS,
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


async def database_is_up(client: AsyncMongoClient[dict[str, object]]) -> bool:
    """Whether MongoDB answers a ping right now."""
    try:
        await client.admin.command("ping")
    except PyMongoError:
        return False
    return True
