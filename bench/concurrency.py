"""Throughput of one booking worker process, as a ratio to its ideal.

A worker handles up to ``prefetch`` messages at once, each waiting a simulated
confirmation delay, so at best it decides ``prefetch / mean delay`` bookings a second;
the requirement is a ratio of at least 0.90 to that. Each run gets its own RabbitMQ
vhost and database, stores N pending bookings (distinct future minutes), publishes one
``BookAppointment`` each, and only then starts one real booking worker. The clock starts
when the worker logs "started successfully" and stops at the last decision.

``ratio`` covers the whole run, including the drain when fewer than ``prefetch``
bookings are left: an ideal worker gets about 0.84 at N = 4 x prefetch (0.92 at 8x,
0.96 at 20x, the default N). ``steady`` counts only decisions from one maximum delay after the start
to the (N - prefetch)-th, while the queue still held work: about 0.96 for an ideal worker.

Needs RabbitMQ at 127.0.0.1:5672 (guest/guest) and ``rabbitmqctl``; starts a SecantusDB
server unless ``CLINIC_MONGO_URL`` is set. Prefetch is ``CLINIC_PREFETCH`` (default 50).
From the repository root::

    python -m bench.concurrency [--bookings N] [--runs 3] [--delay-min 2] [--delay-max 5]
"""

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from beanie import init_beanie
from faststream.rabbit import RabbitBroker
from pymongo import AsyncMongoClient
from tests.processes import running

from bench.environment import DOCTORS, database_server, rabbitmqctl
from clinic.api.seed import seed_doctors
from clinic.messages import BookAppointment, BookingStatus
from clinic.messaging.topology import BOOKING_REQUESTS, declare_topology
from clinic.settings import Settings, settings
from clinic.store.documents import DOCUMENT_MODELS, Booking

RABBIT_URL = "amqp://guest:guest@127.0.0.1:5672/"
READY_LINE = b"started successfully"


@dataclass
class Run:
    """One measured run: when the worker was ready and when each booking was decided."""

    start: float
    decided: list[float]

    def steady(self, expected: float, prefetch: int, delay_max: float) -> float | None:
        """The ratio counting only decisions made while the queue still held work."""
        last = len(self.decided) - prefetch  # after this decision the queue is empty
        begin = self.start + delay_max
        if last < 1 or self.decided[last - 1] <= begin:
            return None
        before = sum(1 for t in self.decided if t <= begin)
        return (last - before) / (self.decided[last - 1] - begin) / expected


async def load(rabbit_url: str, mongo_url: str, db_name: str, count: int) -> None:
    """Store ``count`` pending bookings at distinct future minutes and publish a request each."""
    async with AsyncMongoClient[dict[str, object]](mongo_url, tz_aware=True) as client:
        await init_beanie(database=client[db_name], document_models=DOCUMENT_MODELS)
        await seed_doctors(DOCTORS)
        first = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=1)
        bookings = [
            Booking(patient_name=f"Patient {i}", patient_email=f"p{i}@example.com", date=date)
            for i, date in enumerate(first + timedelta(minutes=m) for m in range(count))
        ]
        await Booking.insert_many(bookings)
    await declare_topology(rabbit_url)
    async with RabbitBroker(rabbit_url) as broker:
        for booking in bookings:
            request = BookAppointment(booking_id=booking.id)
            await broker.publish(request, BOOKING_REQUESTS, persist=True)


async def wait_decided(mongo_url: str, db_name: str) -> list[float]:
    """Wait until no booking is pending; the times of the decisions, in order."""
    async with AsyncMongoClient[dict[str, object]](mongo_url, tz_aware=True) as client:
        bookings = client[db_name][Booking.Settings.name]
        pending = True
        while pending:
            await asyncio.sleep(0.2)
            pending = await bookings.count_documents({"status": BookingStatus.PENDING}) > 0
        decided = [doc async for doc in bookings.find({}, {"updated_at": 1, "status": 1})]
    if rejected := sum(doc["status"] != BookingStatus.CONFIRMED for doc in decided):
        print(f"warning: {rejected} bookings were rejected", file=sys.stderr)
    return sorted(doc["updated_at"].timestamp() for doc in decided)  # type: ignore[attr-defined]


async def drop(mongo_url: str, db_name: str) -> None:
    async with AsyncMongoClient[dict[str, object]](mongo_url) as client:
        await client.drop_database(db_name)


def wait_ready(log: Path, timeout: float = 60) -> float:
    """Wait for the worker's "started successfully" line; the time it appeared."""
    deadline = time.monotonic() + timeout
    while READY_LINE not in log.read_bytes():
        if time.monotonic() > deadline:
            raise RuntimeError(f"worker not ready after {timeout:.0f} s:\n{log.read_text()}")
        time.sleep(0.01)
    return time.time()


def measure(mongo_url: str, args: argparse.Namespace, workdir: Path) -> Run:
    """One run, in a vhost and a database of its own."""
    run_id = uuid.uuid4().hex[:8]
    vhost, db_name = f"clinic-bench-{run_id}", f"clinic_bench_{run_id}"
    rabbit_url = RABBIT_URL + vhost
    env = {
        **os.environ,
        "CLINIC_RABBIT_URL": rabbit_url,
        "CLINIC_MONGO_URL": mongo_url,
        "CLINIC_MONGO_DB": db_name,
        "CLINIC_CONFIRM_DELAY_MIN": str(args.delay_min),
        "CLINIC_CONFIRM_DELAY_MAX": str(args.delay_max),
    }
    timeout = 10 * args.bookings * args.delay_max / settings.prefetch + 60
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        asyncio.run(load(rabbit_url, mongo_url, db_name, args.bookings))
        log = workdir / f"worker-{run_id}.log"
        with running("faststream run clinic.handlers.booking:app", log, env):
            start = wait_ready(log)
            decided = asyncio.run(asyncio.wait_for(wait_decided(mongo_url, db_name), timeout))
        return Run(start, decided)
    finally:
        rabbitmqctl("delete_vhost", vhost)
        asyncio.run(drop(mongo_url, db_name))


def main(argv: list[str] | None = None) -> None:
    defaults = Settings.model_fields
    parser = argparse.ArgumentParser(
        prog="python -m bench.concurrency",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bookings", type=int, help="bookings per run (default 20 x prefetch)")
    parser.add_argument("--runs", type=int, default=3, help="number of runs (default 3)")
    parser.add_argument("--delay-min", type=float, default=defaults["confirm_delay_min"].default)
    parser.add_argument("--delay-max", type=float, default=defaults["confirm_delay_max"].default)
    args = parser.parse_args(argv)
    prefetch = settings.prefetch
    args.bookings = args.bookings or 20 * prefetch
    expected = prefetch / ((args.delay_min + args.delay_max) / 2)
    print(
        f"booking worker: prefetch {prefetch}, delay {args.delay_min:g}-{args.delay_max:g} s, "
        f"{args.bookings} bookings per run, expected {expected:.2f}/s"
    )
    print(f"{'run':>6} {'elapsed s':>10} {'per s':>7} {'ratio':>6} {'steady':>7}")
    columns: list[list[float]] = [[], [], [], []]
    workdir = Path(tempfile.mkdtemp(prefix="clinic-bench-"))
    try:
        for number in range(1, args.runs + 1):
            # A server of its own per run (see bench.environment.Clinic).
            with database_server(workdir / f"db-{number}") as (mongo_url, _):
                run = measure(mongo_url, args, workdir)
                elapsed = run.decided[-1] - run.start
                rate = args.bookings / elapsed
                values = (
                    elapsed,
                    rate,
                    rate / expected,
                    run.steady(expected, prefetch, args.delay_max),
                )
                for column, value in zip(columns, values, strict=True):
                    if value is not None:
                        column.append(value)
                print(_row(str(number), *values), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(_row("median", *(statistics.median(c) if c else None for c in columns)))
    if columns[2] and statistics.median(columns[2]) > 1:
        print("warning: more than prefetch bookings were in flight at once", file=sys.stderr)


def _row(label: str, *values: float | None) -> str:
    shown = ["-" if value is None else f"{value:.2f}" for value in values]
    return f"{label:>6} " + " ".join(f"{v:>{w}}" for v, w in zip(shown, (10, 7, 6, 7), strict=True))


if __name__ == "__main__":
    main()
