"""``GET /bookings`` over 200,000 bookings: first page, a deep page, each filter.

The bookings are bulk-inserted (5 doctors, 2,000 patients, a year of dates, all
statuses). Each query is timed over HTTP against the API process (median of 20),
and its plan is read with ``explain`` to show which index serves it. The exact
``count`` is timed on its own, since it grows with the match.
"""

import asyncio
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from beanie import init_beanie
from pymongo import AsyncMongoClient

from bench.environment import Clinic
from clinic.messages import BookingStatus
from clinic.store.documents import DOCUMENT_MODELS, Booking
from clinic.store.listing import BookingFilter, count, encode_cursor, page_cursor

BOOKINGS = int(os.environ.get("BENCH_LISTING_BOOKINGS", "200000"))
"""How many bookings to load (a smaller number tries the benchmark out quickly)."""
REPEATS = int(os.environ.get("BENCH_LISTING_REPEATS", "20"))
"""Requests per query; the figure is their median."""
STAFF = {"Authorization": "Bearer bench-staff-token-0123456789abcdefghij"}
START = datetime(2031, 1, 1, tzinfo=UTC)
STATUSES = (
    [BookingStatus.CONFIRMED] * 6
    + [BookingStatus.REJECTED] * 2
    + [
        BookingStatus.PENDING,
        BookingStatus.CANCELLED,
    ]
)


def _document(n: int, created: datetime) -> dict[str, Any]:
    booking_id = f"{n:08d}-bench"
    at = created + timedelta(milliseconds=n)
    return {
        "_id": booking_id,
        "patient_name": f"Paciente {n % 2000}",
        "patient_email": f"p{n % 2000}@example.com",
        "date": START + timedelta(minutes=30 * (n % 17_000)),
        "doctor_id": f"dr-{n % 5}",
        "status": STATUSES[n % len(STATUSES)].value,
        "created_at": at,
        "updated_at": at,
        "list_key": f"{at:%Y-%m-%dT%H:%M:%S.%f}|{booking_id}",
    }


async def load(clinic: Clinic) -> float:
    """Insert the bookings in bulk (indexes exist first); the seconds it took."""
    async with AsyncMongoClient[dict[str, Any]](clinic.mongo_url, tz_aware=True) as client:
        await init_beanie(database=client[clinic.db_name], document_models=DOCUMENT_MODELS)
        collection = Booking.get_pymongo_collection()
        created = datetime.now(UTC) - timedelta(days=30)
        started = time.monotonic()
        for first in range(0, BOOKINGS, 5000):
            batch = [_document(n, created) for n in range(first, min(first + 5000, BOOKINGS))]
            await collection.insert_many(batch, ordered=False)
        return time.monotonic() - started


QUERIES: dict[str, dict[str, str]] = {
    "first page": {},
    "status=cancelled": {"status": "cancelled"},
    "doctorId=dr-3": {"doctorId": "dr-3"},
    "from/to (one week)": {"from": "2031-03-01T00:00:00Z", "to": "2031-03-08T00:00:00Z"},
    "patientEmail": {"patientEmail": "p77@example.com"},
    "all filters": {
        "status": "confirmed",
        "doctorId": "dr-2",
        "from": "2031-01-01T00:00:00Z",
        "to": "2031-12-31T00:00:00Z",
        "patientEmail": "p77@example.com",
    },
}


async def deep_cursor(clinic: Clinic) -> str:
    """A cursor three quarters down the list (150,000 bookings down, 3,000 pages of 50)."""
    async with AsyncMongoClient[dict[str, Any]](clinic.mongo_url) as client:
        bookings = client[clinic.db_name]["bookings"]
        found = (
            await bookings.find({}, {"list_key": 1})
            .sort("list_key", -1)
            .skip(BOOKINGS * 3 // 4)
            .limit(1)
            .to_list()
        )
    return encode_cursor(found[0]["list_key"])


def timed(client: httpx.Client, params: dict[str, str]) -> tuple[float, int]:
    """Median milliseconds of ``REPEATS`` requests, and the count they report."""
    times, count = [], 0
    for _ in range(REPEATS):
        started = time.perf_counter()
        answer = client.get("/bookings", params=params, headers=STAFF)
        times.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
        count = answer.json()["count"]
    return statistics.median(times), count


async def plans(clinic: Clinic) -> dict[str, tuple[str, float, float]]:
    """The index each query's winning plan scans, and the median ms of its count and its page."""
    found = {}
    async with AsyncMongoClient[dict[str, Any]](clinic.mongo_url, tz_aware=True) as client:
        await init_beanie(database=client[clinic.db_name], document_models=DOCUMENT_MODELS)
        for name, params in QUERIES.items():
            where = BookingFilter(
                status=BookingStatus(params["status"]) if "status" in params else None,
                doctor_id=params.get("doctorId"),
                date_from=datetime.fromisoformat(params["from"]) if "from" in params else None,
                date_to=datetime.fromisoformat(params["to"]) if "to" in params else None,
                patient_email=params.get("patientEmail"),
            )
            plan = await page_cursor(where, None, 50).explain()
            stage, scans = plan["queryPlanner"]["winningPlan"], []
            while stage:
                scans.append(stage.get("indexName") or stage["stage"])
                stage = stage.get("inputStage")
            found[name] = (scans[-1], *await _count_and_page_ms(where))
    return found


async def _count_and_page_ms(where: BookingFilter) -> tuple[float, float]:
    """The two halves of a listing, timed apart (median of 5): the exact count, the page."""
    counts, pages = [], []
    for _ in range(5):
        started = time.perf_counter()
        await count(where)
        counted = time.perf_counter()
        await page_cursor(where, None, 50).to_list()
        counts.append((counted - started) * 1000)
        pages.append((time.perf_counter() - counted) * 1000)
    return statistics.median(counts), statistics.median(pages)


def run(clinic: Clinic) -> list[tuple[str, float, int, str, float, float]]:
    """Load the bookings and time each query.

    Rows of (query, ms, count, index, count ms, page ms); the deep page's split is not timed.
    """
    print(f"listing: inserted {BOOKINGS} bookings in {asyncio.run(load(clinic)):.1f} s", flush=True)
    clinic.start("api")
    clinic.wait_until_ready()
    indexes = asyncio.run(plans(clinic))
    cursor = asyncio.run(deep_cursor(clinic))
    rows = []
    with httpx.Client(base_url=clinic.base_url, timeout=60) as client:
        for name, params in QUERIES.items():
            ms, count = timed(client, params)
            rows.append((name, ms, count, *indexes[name]))
        ms, count = timed(client, {"cursor": cursor})
        deep = f"deep page ({BOOKINGS * 3 // 4:,} down)"
        rows.insert(1, (deep, ms, count, indexes["first page"][0], float("nan"), float("nan")))
    return rows
