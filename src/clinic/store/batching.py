"""Database calls of one kind that arrive together share one round trip.

The database (SecantusDB most of all) pays mostly per command, not per
document: a worker deciding fifty bookings at once is far faster writing
them in a few commands than in fifty. ``Batched`` gathers the calls that
arrive while one is running and makes them the next call.

Each caller still waits for its own result, so nothing is acknowledged before
it is stored; and nothing waits for a batch to fill: a call starts as soon as
the previous one is done.
"""

import asyncio
import copy
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from beanie import Document
from pymongo.errors import BulkWriteError

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_BATCH = 100
"""Most items one call carries."""


class Batched(Generic[Item, Result]):
    """Runs ``call`` on batches of items; ``run(item)`` returns that item's result.

    ``call`` gets the items in arrival order and returns one outcome per item:
    its result, or the exception that item's caller gets.
    """

    def __init__(
        self, call: Callable[[list[Item]], Awaitable[list[Result | BaseException]]]
    ) -> None:
        self._call = call
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def run(self, item: Item) -> Result:
        """``item``'s result, computed together with whatever else is waiting."""
        outcome: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, outcome))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._drain())
        return await outcome

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                outcomes = await self._call([item for item, _ in batch])
            except Exception as exc:  # noqa: BLE001 - every caller of the batch gets it
                outcomes = [_own_copy(exc) for _ in batch]
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():  # its caller was cancelled
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)


def _own_copy(exc: Exception) -> Exception:
    """``exc`` for one caller, with the same traceback.

    One exception object raised in several callers is one object mutated by each:
    a caller raising it while handling another error makes that error its cause, for
    every caller's log.
    """
    try:
        return copy.copy(exc).with_traceback(exc.__traceback__)
    except Exception:  # noqa: BLE001 - an exception that cannot be copied is shared
        return exc


Stored = TypeVar("Stored", bound=Document)
DUPLICATE_KEY = 11000
"""MongoDB's error code for a unique key that is taken."""


def reads_of(document_class: type[Stored]) -> Batched[str, Stored | None]:
    """Batched reads of ``document_class`` by id: the document, or None if there is none."""

    async def read_all(ids: list[str]) -> list[Stored | BaseException | None]:
        # pymongo's cursor and pydantic's validation: Beanie's own find costs as much again.
        raws = document_class.get_pymongo_collection().find({"_id": {"$in": ids}})
        found = {raw["_id"]: document_class.model_validate(raw) async for raw in raws}
        return [found.get(document_id) for document_id in ids]

    return Batched(read_all)


def inserts_of(document_class: type[Stored]) -> Batched[Stored, bool]:
    """Batched inserts of ``document_class``: True when stored, False when a unique key is taken.

    The write is unordered, so a taken key fails only its own document.
    """

    async def insert_all(documents: list[Stored]) -> list[bool | BaseException]:
        outcomes: list[bool | BaseException] = [True] * len(documents)
        try:
            # Pydantic's dump: what Beanie's encoder gives for these documents, ten times faster.
            await document_class.get_pymongo_collection().insert_many(
                [document.model_dump(by_alias=True) for document in documents], ordered=False
            )
        except BulkWriteError as exc:
            for error in exc.details.get("writeErrors", []):
                taken = error.get("code") == DUPLICATE_KEY
                outcomes[error["index"]] = (
                    False if taken else BulkWriteError({"writeErrors": [error]})
                )
        return outcomes

    return Batched(insert_all)
