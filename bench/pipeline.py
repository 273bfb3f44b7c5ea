"""Bookings end to end: posted to the API until every one is confirmed or rejected.

- **Original settings:** 3 booking-worker processes, 2–5 s delay, 60 bookings
  posted at once; the time until all are terminal.
- **Zero delay:** 1 booking-worker process, 2,000 bookings; bookings per second
  from the first POST to the last decision, and each booking's POST → decision
  latency (its ``updatedAt`` minus its ``createdAt``).

The processes are the compose file's (API, booking and notification workers).
"""

import asyncio
import json
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from pymongo import MongoClient

from bench.api import api_command
from bench.environment import Clinic


@dataclass
class Pipeline:
    """One run's result."""

    seconds: float
    posting_seconds: float
    per_second: float
    p50_ms: float
    p99_ms: float
    rss_at_rest: dict[str, float]
    rss_after: dict[str, float]
    cpu_ms: dict[str, float]
    """CPU milliseconds per booking, by process, from the first POST to the last decision."""


async def post_all(base_url: str, count: int, concurrency: int, first_number: int = 0) -> None:
    """POST ``count`` bookings at distinct future minutes over ``concurrency`` connections,
    numbered from ``first_number`` (each number its own patient and minute).

    A minimal HTTP/1.1 client with keep-alive: the load generator shares the two
    cores with the clinic, and httpx cost 1.3 ms of CPU a booking, as much as the API.
    """
    first = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=2)
    url = urlsplit(base_url)
    numbers = iter(range(first_number, first_number + count))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        try:
            for n in numbers:  # shared: each booking is posted once, by whichever is free
                body = json.dumps(
                    {
                        "patientName": f"Paciente {n}",
                        "patientEmail": f"p{n}@example.com",
                        "date": (first + timedelta(minutes=n)).isoformat(),
                    }
                ).encode()
                writer.write(
                    b"POST /book HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (url.netloc.encode(), len(body), body)
                )
                status, answer = await _response(reader)
                if status != 202:
                    raise RuntimeError(f"POST /book answered {status}: {answer!r}")
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The status and body of one HTTP/1.1 response (the API always sends Content-Length)."""
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


def wait_terminal(clinic: Clinic, count: int, timeout: float) -> list[dict[str, datetime]]:
    """Wait until the ``count`` bookings posted (each answered 202, so stored) are decided;
    their creation and decision times."""
    with MongoClient(clinic.mongo_url, tz_aware=True) as client:
        bookings = client[clinic.db_name]["bookings"]
        deadline = time.monotonic() + timeout
        # The poll loads the database it measures, so it is the cheapest read that tells:
        # one pending booking, through the status index the server picks itself (counts,
        # and a named index, are walks of everything on SecantusDB; docs/performance.md).
        # The decision times come from the bookings themselves, so polling once a second
        # costs no precision.
        while bookings.find_one({"status": "pending"}, {"_id": 1}) is not None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"not all {count} bookings were decided in {timeout:.0f} s")
            time.sleep(1)
        decided = list(bookings.find({}, {"created_at": 1, "updated_at": 1, "_id": 0}))
        if len(decided) != count:
            raise RuntimeError(f"{len(decided)} bookings stored, {count} posted")
        return decided


def run_pipeline(
    clinic: Clinic, workers: int, count: int, concurrency: int, api_processes: int = 1
) -> Pipeline:
    """Start the API (``api_processes`` of it), ``workers`` booking workers and a
    notification worker; time ``count`` bookings."""
    clinic.start("api", api_command(api_processes))
    for n in range(workers):
        clinic.start(f"booking-worker-{n}")
    clinic.start("notification-worker")
    clinic.wait_until_ready()
    clinic.wait_for_workers()
    time.sleep(1)
    at_rest = clinic.rss()
    meter = clinic.cpu_meter().start()
    started = time.time()
    asyncio.run(post_all(clinic.base_url, count, concurrency))
    posted = time.time()
    decided = wait_terminal(clinic, count, timeout=600)
    # The patients' emails follow the decisions: their cost is part of a booking's.
    deadline = time.monotonic() + 120
    while clinic.queue_depth("email_notifications") and time.monotonic() < deadline:
        time.sleep(0.5)
    used = meter.stop()
    last = max(b["updated_at"].timestamp() for b in decided)
    latencies = sorted((b["updated_at"] - b["created_at"]).total_seconds() * 1000 for b in decided)
    return Pipeline(
        seconds=last - started,
        posting_seconds=posted - started,
        per_second=count / (last - started),
        p50_ms=statistics.median(latencies),
        p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        rss_at_rest=at_rest,
        rss_after=clinic.rss(),
        cpu_ms={name: seconds * 1000 / count for name, seconds in used.items()},
    )
