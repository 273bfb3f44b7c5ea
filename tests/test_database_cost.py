"""What a booking costs the database: the writes it makes, counted by the server.

The database is the clinic's busiest process, and it pays mostly per document
written (docs/performance.md). These tests pin the writes of a booking, so a
change that adds a record to the booking's path (an audit row, a second outbox
record) fails here and has to say why in the test.
"""

import os
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from httpx import AsyncClient, Response
from pymongo import AsyncMongoClient

from tests.conftest import Mailbox

Writes = Counter[tuple[str, str]]
"""Documents written, by operation and collection: ``("insert", "bookings")``."""


def _written(entry: dict[str, Any]) -> Writes:
    """The documents one profiled command wrote (a batch of inserts counts each one)."""
    command, collection = entry.get("command", {}), entry.get("ns", "").split(".", 1)[-1]
    for op, field in (("insert", "documents"), ("update", "updates"), ("delete", "deletes")):
        if op in command:
            return Counter({(op, collection): len(command.get(field, []))})
    if "findAndModify" in command or "findandmodify" in command:
        return Counter({("findAndModify", collection): 1})
    return Counter()


@asynccontextmanager
async def profiled(
    database: AsyncMongoClient[dict[str, object]],
) -> AsyncIterator[list[dict[str, Any]]]:
    """The database's profiler on while the block runs; the list holds, once the block
    has ended, one entry for each command the block made."""
    db = database[os.environ["CLINIC_MONGO_DB"]]
    await db.command("profile", 0)
    await db.drop_collection("system.profile")
    entries: list[dict[str, Any]] = []
    await db.command("profile", 2)
    try:
        yield entries
    finally:
        await db.command("profile", 0)
    entries += [entry async for entry in db["system.profile"].find()]


async def book_counting_writes(
    client: AsyncClient, database: AsyncMongoClient[dict[str, object]]
) -> tuple[Response, Writes]:
    """POST one booking with the database's profiler on: the answer, and what was written.

    In-process handlers have done all they do for it by the time the answer is back.
    """
    async with profiled(database) as entries:
        response = await client.post("/book", json=booking_body())
    written: Writes = Counter()
    for entry in entries:
        written += _written(entry)
    return response, written


def _filters(command: dict[str, Any]) -> list[dict[str, Any]]:
    """The filters a profiled command selects documents by."""
    name = next(iter(command))
    if name in ("update", "delete"):
        return [statement["q"] for statement in command.get(f"{name}s", [])]
    if name == "aggregate":
        return [stage["$match"] for stage in command["pipeline"][:1] if "$match" in stage]
    if name in ("find", "count"):
        return [command.get("filter") or command.get("query") or {}]
    return []  # an insert selects nothing


async def assert_served_by_indexes(
    database: AsyncMongoClient[dict[str, object]], entries: list[dict[str, Any]]
) -> None:
    """Every profiled command leaves the choice of index to the server, and finds one.

    Told which index (a hint), SecantusDB walks all of it; a filter it cannot match
    to an index (conditions joined by ``$and`` or ``$or``, a ``$regex``), it serves by
    a scan. A filter on ``_id`` is served by the id, and the doctors, tens of them,
    are read whole.
    """
    db = database[os.environ["CLINIC_MONGO_DB"]]
    for entry in entries:
        command = entry["command"]
        assert "hint" not in command, command
        collection = command[next(iter(command))]
        for where in _filters(command):
            if "_id" in where or (collection == "doctors" and not where):
                continue
            planner = (await db[collection].find(where).explain())["queryPlanner"]
            assert isinstance(planner, dict)
            assert "IXSCAN" in str(planner["winningPlan"]), command


def booking_body() -> dict[str, str]:
    # Weeks ahead, so the confirmation schedules a reminder, as most bookings' do.
    when = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=20)
    return {
        "patientName": "Juan Pérez",
        "patientEmail": "juan@example.com",
        "date": when.isoformat(),
    }


async def test_storing_a_booking_is_the_request_paths_one_write(
    client: AsyncClient, clean_db: AsyncMongoClient[dict[str, object]]
) -> None:
    response, written = await book_counting_writes(client, clean_db)

    assert response.status_code == 202
    # The booking carries its request's outbox record (request_due_at) and its hand-over
    # ticket; the API's mark of what reached the broker is per process, not per booking.
    assert written == Counter({("insert", "bookings"): 1})


async def test_a_booking_confirmed_and_emailed_writes_six_documents(
    client_and_handlers: AsyncClient,
    mailbox: Mailbox,
    clean_db: AsyncMongoClient[dict[str, object]],
) -> None:
    booked, written = await book_counting_writes(client_and_handlers, clean_db)

    assert booked.status_code == 202
    assert [email.subject.split(":")[0] for email in mailbox.sent] == ["Su cita está confirmada"]
    assert written == Counter(
        {
            ("insert", "bookings"): 1,  # the API: the booking, its request due with it
            ("insert", "slot_claims"): 1,  # the booking worker: the doctor's slot, held
            ("update", "bookings"): 1,  # ... the decision
            ("insert", "outbox"): 2,  # ... the reminder; the notification worker: the email
            ("update", "outbox"): 1,  # ... the email, marked sent
        }
    )


async def test_booking_rejecting_and_cancelling_read_and_write_through_indexes(
    client_and_handlers: AsyncClient,
    mailbox: Mailbox,
    clean_db: AsyncMongoClient[dict[str, object]],
) -> None:
    # Each costs what it touches, not what the clinic holds: a rejection or a cancel
    # that scanned every slot ever held would slow down with every booking made.
    body = booking_body()
    async with profiled(clean_db) as entries:
        first = await client_and_handlers.post("/book", json=body, headers={"Idempotency-Key": "a"})
        taken = await client_and_handlers.post("/book", json={**body, "patientEmail": "b@x.org"})
        opened = {"Authorization": f"Bearer {first.json()['manageToken']}"}
        looked_up = await client_and_handlers.get(first.headers["Location"], headers=opened)
        cancelled = await client_and_handlers.post(
            f"{first.headers['Location']}/cancel", headers=opened
        )
        rejected = await client_and_handlers.get(
            taken.headers["Location"],
            headers={"Authorization": f"Bearer {taken.json()['manageToken']}"},
        )

    assert (first.status_code, taken.status_code) == (202, 202)
    assert looked_up.json()["status"] == "confirmed"
    assert rejected.json()["status"] == "rejected", "the slot was the first booking's"
    assert cancelled.json()["status"] == "cancelled"
    await assert_served_by_indexes(clean_db, entries)
