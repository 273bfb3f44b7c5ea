"""The whole clinic as real processes, for the fault tests to break and watch.

A ``Stack`` starts the API and the workers (through the ``tests.faulty_*``
wrappers, which only add a mailbox file and crash points), books over HTTP,
and reads what happened: booking states in MongoDB, emails in the mailbox,
crash markers and queue depths.
"""

import asyncio
import json
import os
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx

from clinic.clock import utcnow
from clinic.embedded_db import free_port
from clinic.messages import BookingStatus
from clinic.store.documents import Booking
from tests.integration import queue_depths, wait_until_settled
from tests.processes import BIN, ROOT, Service, wait_until_up

BOOKING_WORKER = "faststream run tests.faulty_booking_worker:app"
NOTIFICATION_WORKER = "faststream run tests.faulty_notification_worker:app"


class Stack:
    """The API and any number of workers, sharing a mailbox and a markers file."""

    def __init__(self, tmp: Path, rabbitmqctl: Callable[..., str], **env: str) -> None:
        self.tmp = tmp
        self.rabbitmqctl = rabbitmqctl
        self.mailbox = tmp / "mailbox.jsonl"
        self.markers = tmp / "markers.txt"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {"FAULT_MAILBOX": str(self.mailbox), "FAULT_MARKERS": str(self.markers), **env}
        self.services: list[Service] = []
        self.slots = iter(range(1, 1_000_000))

    def start(self, command: str, name: str, **env: str) -> Service:
        """Start ``command`` with the stack's environment plus ``env``; logs to ``name``.log."""
        service = Service(command, self.tmp / f"{name}.log", {**self.env, **env}).start()
        self.services.append(service)
        return service

    def api(self, command: str = "uvicorn clinic.api:app", **env: str) -> Service:
        return self.start(f"{command} --port {self.port}", "api", **env)

    def booking_worker(self, name: str = "booking", **env: str) -> Service:
        return self.start(BOOKING_WORKER, name, **env)

    def notification_worker(self, name: str = "notifications", **env: str) -> Service:
        return self.start(NOTIFICATION_WORKER, name, **env)

    def clinic(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the ``clinic`` command with the stack's environment."""
        return subprocess.run(
            [str(BIN / "clinic"), *args],
            env={**os.environ, **self.env},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def stop_all(self) -> None:
        for service in self.services:
            service.terminate(timeout=10)

    async def wait_until_ready(self, within: float = 40.0) -> None:
        await asyncio.to_thread(wait_until_up, self.base_url, within)

    def next_date(self) -> str:
        """A future appointment time no other booking of this stack has."""
        when = utcnow() + timedelta(days=30, minutes=30 * next(self.slots))
        return when.strftime("%Y-%m-%dT%H:%M:00Z")

    async def book(self, count: int = 1, name: str = "Juan Pérez") -> list[str]:
        """POST ``count`` bookings at distinct times, 64 at a time; their ids (each answered 202).

        At most 64 at a time, fewer than httpx's pool has connections: requests queued
        for the pool's connections slow it down sharply (a thousand at once took 26 s
        where 64 at a time took 2 s), and the last ones queue past their timeout.
        """
        limit = asyncio.Semaphore(64)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30) as client:

            async def post(date: str) -> httpx.Response:
                body = {"patientName": name, "patientEmail": "juan@example.com", "date": date}
                async with limit:
                    return await client.post("/book", json=body)

            responses = await asyncio.gather(*(post(self.next_date()) for _ in range(count)))
        assert [r.status_code for r in responses] == [202] * count, responses[0].text
        return [str(r.json()["id"]) for r in responses]

    def emails(self) -> Counter[str]:
        """How many emails each booking got."""
        if not self.mailbox.exists():
            return Counter()
        lines = self.mailbox.read_text().splitlines()
        return Counter(json.loads(line)["bookingId"] for line in lines)

    async def wait_for_marker(self, point: str, within: float = 20.0) -> str:
        """Wait until a process hangs at crash point ``point``; the booking id it names."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.markers.exists():
                for line in self.markers.read_text().splitlines():
                    reached, booking_id = line.split(" ", 1)
                    if reached == point:
                        return booking_id
            await asyncio.sleep(0.05)
        raise AssertionError(f"no process reached {point} within {within}s")

    async def wait_for_emails(self, booking_ids: list[str], within: float = 30.0) -> None:
        """Wait until every booking got at least one email; else fail naming the bookings
        without one, and where the queues stand (a retry stuck in a queue shows there)."""
        deadline = time.monotonic() + within
        while missing := set(booking_ids) - set(self.emails()):
            if time.monotonic() > deadline:
                depths = await asyncio.to_thread(self.queue_depths)
                raise AssertionError(
                    f"{len(missing)} bookings got no email ({sorted(missing)[:5]}...); "
                    f"queues: {depths}"
                )
            await asyncio.sleep(0.25)

    async def wait_for_depths(
        self, expected: dict[str, int], within: float, column: str = "messages"
    ) -> dict[str, int]:
        """Wait until the named queues hold exactly ``expected`` messages; all the depths."""
        deadline = time.monotonic() + within
        while True:
            depths = await asyncio.to_thread(self.queue_depths, column)
            if all(depths.get(name) == count for name, count in expected.items()):
                return depths
            assert time.monotonic() < deadline, f"expected {expected}, queues at {depths}"
            await asyncio.sleep(0.05)

    def queue_depths(self, column: str = "messages") -> dict[str, int]:
        """Messages in each queue of the vhost, ready and unacknowledged alike (or ``column``)."""
        return queue_depths(self.rabbitmqctl, column)

    async def wait_until_settled(self, within: float = 30.0) -> None:
        """Wait until no decision or email can still be on its way."""
        await wait_until_settled(self.rabbitmqctl, within)

    async def wait_until_held(self, queue: str, count: int, within: float = 10.0) -> None:
        """Wait until consumers hold ``count`` messages of ``queue`` unacknowledged."""
        await self.wait_for_depths({queue: count}, within, column="messages_unacknowledged")


async def wait_until_terminal(booking_ids: list[str], within: float = 60.0) -> list[Booking]:
    """Wait until none of the bookings is pending; the bookings."""
    deadline = time.monotonic() + within
    pending = {"_id": {"$in": booking_ids}, "status": BookingStatus.PENDING.value}
    # Counting, not loading: polling thousands of bookings would slow the database down.
    while left := await Booking.find(pending).count():
        assert time.monotonic() < deadline, f"{left} of {len(booking_ids)} still pending"
        await asyncio.sleep(0.5)
    bookings = await Booking.find({"_id": {"$in": booking_ids}}).to_list()
    assert len(bookings) == len(booking_ids), "bookings are missing"
    return bookings


def log_count(log: Path, text: str) -> int:
    """How many lines of ``log`` contain ``text``."""
    return sum(text in line for line in log.read_text(errors="replace").splitlines())
