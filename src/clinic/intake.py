"""Storing new bookings: those that arrive together are written in one ``insert_many``.

Each request still waits for its own booking to be written (a 202 always
means stored); it just shares the round trip, and the database's work, with
the requests that arrived during the previous write. Nothing waits for a
batch to fill: a write starts as soon as the previous one is done.
"""

import asyncio
from typing import Any

from beanie.odm.utils.dump import get_dict
from pymongo.errors import BulkWriteError

from clinic.models import Booking

MAX_BATCH = 100
"""Most bookings one write carries."""


class BookingInserts:
    """Writes bookings in batches; ``insert`` returns once this booking is stored."""

    def __init__(self) -> None:
        self._waiting: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def insert(self, booking: Booking) -> None:
        """Store ``booking``; raises what the database raised for it."""
        stored: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((get_dict(booking, to_db=True), stored))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        await stored

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                await Booking.get_pymongo_collection().insert_many(
                    [document for document, _ in batch], ordered=False
                )
            except BulkWriteError as exc:
                failed = {error["index"]: error for error in exc.details.get("writeErrors", [])}
                for index, (_, stored) in enumerate(batch):
                    if index in failed:
                        stored.set_exception(BulkWriteError({"writeErrors": [failed[index]]}))
                    else:
                        stored.set_result(None)
            except Exception as exc:  # noqa: BLE001 - every request of the batch gets it
                for _, stored in batch:
                    stored.set_exception(exc)
            else:
                for _, stored in batch:
                    stored.set_result(None)


booking_inserts = BookingInserts()
