"""The clinic on a three-node RabbitMQ cluster (quorum queues) that loses its nodes.

The clients reach the cluster through HAProxy (see ``tests.rabbit_cluster``): the API
prefers node 1, the booking workers node 2, the notification worker node 3. While
1,000 bookings are in flight, the node leading ``booking_requests`` is SIGKILLed and
started again later; then the node leading it next is stopped gracefully and started
again, as in a rolling restart. The ledger must hold: every booking ends confirmed or
rejected; each status change is announced on an audit queue bound to the fanout, and
emailed once; no queue is left with messages; and every process reconnected by itself.

``CLUSTER_FAILOVER=off`` runs the same test with HAProxy's backup servers left out, so
the booking workers cannot leave their dead node: the test must then fail.
"""

import asyncio
import os
import shutil
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import aio_pika
import pytest
from pymongo.errors import ConnectionFailure

from clinic.clock import utcnow
from clinic.messages import BookingStatus
from clinic.messaging.topology import NOTIFICATIONS, QUEUES
from clinic.store.documents import Booking
from tests import private_broker
from tests.conftest import unavailable
from tests.rabbit_cluster import RabbitCluster
from tests.stack import Stack

# Above the sum of the waits inside, so a wait fails with its own message.
pytestmark = [pytest.mark.faults, pytest.mark.timeout(420), pytest.mark.usefixtures("clean_db")]

BOOKINGS = 1000
BOOKING_WORKERS = 2
PREFETCH = 5
FAILOVER = os.environ.get("CLUSTER_FAILOVER", "on") != "off"
DECIDED_AGAIN_WITHIN = 20.0
"""Seconds after losing a node by which bookings must be decided again."""
API_NODE, WORKERS_NODE, NOTIFICATIONS_NODE = 1, 2, 3
AUDIT = "ledger_audit"
DECIDED = {"status": {"$ne": BookingStatus.PENDING.value}}
T = TypeVar("T")


@pytest.fixture
async def cluster() -> AsyncIterator[RabbitCluster]:
    """Three clustered nodes behind HAProxy, removed afterwards (booted in a thread: the
    loop keeps the test's database client alive meanwhile)."""
    if not private_broker.available():
        unavailable("needs RabbitMQ installed and root, to run private broker nodes")
    if shutil.which("haproxy") is None:
        unavailable("needs HAProxy (the haproxy package) in front of the cluster")
    nodes = RabbitCluster(failover=FAILOVER)
    await asyncio.to_thread(nodes.start)
    try:
        yield nodes
    finally:
        await asyncio.to_thread(nodes.remove)


async def patiently(read: Callable[[], Awaitable[T]]) -> T:
    """The test's own database read, tried again while the database is too busy: it
    shares the machine with three broker nodes and the clinic, and the test client's
    one-second timeouts can lapse (ConnectionFailure), which is not what is under test."""
    for _ in range(20):
        try:
            return await read()
        except ConnectionFailure:
            await asyncio.sleep(0.5)
    return await read()


async def decided(since: datetime | None = None) -> int:
    """How many bookings are decided (since ``since``, if given)."""
    query = DECIDED | ({"updated_at": {"$gt": since}} if since else {})
    return await patiently(Booking.find(query).count)


async def decided_again(since: datetime) -> float:
    """Seconds from ``since`` until bookings were decided again after a node was lost.

    The workers may finish what they held when their connection broke (their prefetch
    each), broker or not: only a decision after those proves a new delivery came.
    """
    held = BOOKING_WORKERS * PREFETCH
    deadline = time.monotonic() + DECIDED_AGAIN_WITHIN
    while (count := await decided(since)) <= held:
        assert time.monotonic() < deadline, (
            f"no booking decided again within {DECIDED_AGAIN_WITHIN:.0f}s of losing a node: "
            f"{count} decided since, no more than the workers held ({held})"
        )
        await asyncio.sleep(0.2)
    after = DECIDED | {"updated_at": {"$gt": since}}
    [first] = await patiently(Booking.find(after).sort("+updated_at").skip(held).limit(1).to_list)
    return (first.updated_at - since).total_seconds()


async def wait_for_stored(count: int, within: float) -> int:
    """Wait until at least ``count`` bookings are stored; how many are."""

    async def stored() -> int:
        return await patiently(Booking.find_all().count)

    return await _wait_for_bookings(stored, count, "stored", within, every=0.05)


async def wait_for_decided(count: int, within: float) -> int:
    """Wait until at least ``count`` bookings are decided; how many are."""
    return await _wait_for_bookings(decided, count, "decided", within, every=0.2)


async def _wait_for_bookings(
    counted: Callable[[], Awaitable[int]], count: int, what: str, within: float, every: float
) -> int:
    deadline = time.monotonic() + within
    while (done := await counted()) < count:
        assert time.monotonic() < deadline, f"{done} bookings {what}, not {count}"
        await asyncio.sleep(every)
    return done


async def declare_audit(url: str) -> None:
    """A quorum queue bound to the fanout, to count announcements: it outlives a node."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        audit = await channel.declare_queue(
            AUDIT, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await audit.bind(NOTIFICATIONS.name)


async def drain(url: str) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """Empty the audit queue: each announcement's message and correlation id; then the
    messages left in every queue, as their leaders count them."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        audit = await channel.declare_queue(AUDIT, passive=True)
        announced = []
        while (message := await audit.get(fail=False, no_ack=True)) is not None:
            announced.append((str(message.message_id), str(message.correlation_id)))
        depths = {}
        for name in [AUDIT, *(q.name for q in QUEUES)]:
            declared = await channel.declare_queue(name, passive=True)
            depths[name] = int(declared.declaration_result.message_count or 0)
    return announced, depths


async def test_bookings_survive_losing_nodes_of_the_cluster(
    cluster: RabbitCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    stack = Stack(
        tmp_path,
        cluster.ctl,
        CLINIC_QUEUE_TYPE="quorum",
        CLINIC_PREFETCH=str(PREFETCH),
        # Long enough that bookings are still waiting through the rolling restart.
        CLINIC_CONFIRM_DELAY_MIN="0.2",
        CLINIC_CONFIRM_DELAY_MAX="0.3",
    )
    posting: asyncio.Task[list[str]] | None = None
    try:
        # Started first, so that they declare the queues: a quorum queue's leader starts
        # on the node its declaring client is connected to.
        for n in range(BOOKING_WORKERS):
            stack.booking_worker(f"booking-{n}", CLINIC_RABBIT_URL=cluster.url_via(WORKERS_NODE))
        await asyncio.to_thread(cluster.wait_for_queues, [q.name for q in QUEUES])
        await declare_audit(cluster.url_via(WORKERS_NODE))
        stack.api(CLINIC_RABBIT_URL=cluster.url_via(API_NODE))
        stack.notification_worker(CLINIC_RABBIT_URL=cluster.url_via(NOTIFICATIONS_NODE))
        await stack.wait_until_ready()
        pids = {s.log.stem: s.process.pid for s in stack.services if s.process}
        # One connection a process, each through the frontend of its own node.
        clients = {API_NODE: 1, WORKERS_NODE: BOOKING_WORKERS, NOTIFICATIONS_NODE: 1}
        own = {f"via_{node}/node{node}": count for node, count in clients.items()}
        await asyncio.to_thread(cluster.wait_for_sessions, own)
        leader = await asyncio.to_thread(cluster.leader_of, "booking_requests")
        assert leader == WORKERS_NODE, f"booking_requests is led by node {leader}"

        first = await stack.book(BOOKINGS // 2)
        decided_at_kill = await wait_for_decided(100, within=60)
        # Killed while the API takes the other half: its publishes meet the lost leader.
        posting = asyncio.create_task(stack.book(BOOKINGS - len(first)))
        stored_at_kill = await wait_for_stored(len(first) + 50, within=30)
        assert not posting.done(), "every booking was posted before the kill"
        killed_at = utcnow()
        cluster.kill(leader)
        failover = await decided_again(killed_at)
        # Every booking worker goes on through its frontend's first backup, the next node.
        moved = {k: n for k, n in own.items() if not k.startswith(f"via_{WORKERS_NODE}/")}
        moved[f"via_{WORKERS_NODE}/node{WORKERS_NODE % 3 + 1}"] = BOOKING_WORKERS
        await asyncio.to_thread(cluster.wait_for_sessions, moved)
        ids = first + await posting
        await asyncio.to_thread(cluster.restart, leader)

        # A rolling restart: the node leading now is stopped cleanly, and started again.
        stopped = await asyncio.to_thread(cluster.leader_of, "booking_requests")
        in_flight = BOOKINGS - await decided()
        assert in_flight > 0, "every booking was decided before the rolling restart"
        stopped_at = utcnow()
        await asyncio.to_thread(cluster.stop_gracefully, stopped)
        pause = await decided_again(stopped_at)
        await asyncio.to_thread(cluster.restart, stopped)

        await wait_for_decided(BOOKINGS, within=60)
        took = time.monotonic() - started
        await stack.wait_for_emails(ids)
        await patiently(lambda: stack.wait_until_settled(within=30))
        announced, depths = await drain(cluster.url_via(API_NODE))
        alive = {s.log.stem: s.process.pid for s in stack.services if s.running and s.process}
        bookings = await patiently(Booking.find_all().to_list)
    finally:
        if posting is not None:
            posting.cancel()
        await asyncio.to_thread(stack.stop_all)

    statuses = Counter(b.status for b in bookings)
    per_change = Counter(message_id for message_id, _ in announced)
    emails = stack.emails()
    with capsys.disabled():
        print(
            f"\ncluster: node {leader}, leading booking_requests, SIGKILLed with "
            f"{decided_at_kill} of {BOOKINGS} decided and {stored_at_kill} stored, "
            f"decided again after {failover:.1f}s; "
            f"node {stopped}, leading next, stopped gracefully with {in_flight} pending, "
            f"decided again after {pause:.1f}s; all decided after {took:.0f}s: "
            f"{statuses[BookingStatus.CONFIRMED]} confirmed, "
            f"{statuses[BookingStatus.REJECTED]} rejected; {len(per_change)} status changes "
            f"announced ({len(announced) - len(per_change)} copies); "
            f"{sum(emails.values())} emails; HAProxy sessions after the kill: {moved}"
        )
    assert sorted(b.id for b in bookings) == sorted(ids), "a booking was lost or doubled"
    assert statuses[BookingStatus.PENDING] == 0
    expected = {f"{b.id}:{b.status.value}" for b in bookings}
    assert set(per_change) == expected, "a status change was not announced, or a wrong one was"
    assert all(correlation == m.split(":")[0] for m, correlation in announced)
    # At least once, as documented: a change is announced again when its request comes
    # back after a lost connection, or after the broker refused the announcement (a queue's
    # leader stopping) that another queue on the fanout had taken. Copies keep the change's
    # message id, by which consumers drop them (one email each, below).
    copies = len(announced) - len(per_change)
    assert copies < BOOKINGS // 4, f"{copies} copies announced"
    assert emails == Counter({b.id: 1 for b in bookings}), "an email was lost or doubled"
    assert not any(depths.values()), f"messages left: {depths}"
    assert alive == pids, f"processes restarted or died: {pids} at first, {alive} at the end"
