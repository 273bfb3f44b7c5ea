"""Test session setup: an isolated RabbitMQ vhost and a MongoDB-compatible server.

Settings are read when ``clinic`` is imported, so the environment is set here,
before any test module imports it.
"""

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import NoReturn
from unittest.mock import MagicMock
from urllib.parse import urlsplit

# Reads no settings, so it may come before the environment below.
from clinic.embedded_db import EmbeddedDatabase, free_port

RUN_ID = uuid.uuid4().hex[:8]
VHOST = f"clinic-test-{RUN_ID}"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


_rabbit_base = os.environ.get("CLINIC_TEST_RABBIT_URL", "amqp://guest:guest@127.0.0.1:5672/")
# A MongoDB named by whoever ran pytest; else each test process starts a server of its own.
# Remembered in a variable of its own: pytest-xdist's workers inherit this process's
# environment, where CLINIC_MONGO_URL names this process's server, not theirs.
EXTERNAL_MONGO = (
    os.environ.setdefault("CLINIC_TEST_GIVEN_MONGO_URL", os.environ.get("CLINIC_MONGO_URL", ""))
    or None
)
SESSION_DIR = Path(tempfile.mkdtemp(prefix="clinic-test-"))
# Also where no server ran in it: pytest-xdist's controller, a --collect-only.
atexit.register(shutil.rmtree, SESSION_DIR, ignore_errors=True)
SESSION_DB = EmbeddedDatabase(SESSION_DIR / "db", log=SESSION_DIR / "db.log")
os.environ.update(
    CLINIC_RABBIT_URL=_rabbit_base.rstrip("/") + "/" + VHOST,
    CLINIC_MONGO_URL=EXTERNAL_MONGO or SESSION_DB.url,
    CLINIC_MONGO_DB=f"clinic_test_{RUN_ID}",
    CLINIC_RETRY_DELAY="1",
    CLINIC_MAX_RETRIES="3",
    CLINIC_PREFETCH="4",
    CLINIC_CONFIRM_DELAY_MIN="0.01",
    CLINIC_CONFIRM_DELAY_MAX="0.05",
    CLINIC_MONGO_TIMEOUT="1",
    CLINIC_PUBLISH_TIMEOUT="3",
    CLINIC_OUTBOX_GRACE="1",
    CLINIC_OUTBOX_INTERVAL="0.2",
    CLINIC_EMAIL_SEND_TIMEOUT="2",
    CLINIC_LOG_LEVEL="INFO",
    CLINIC_TIMEZONE="Europe/Madrid",
    # One doctor who works around the clock in 1-minute slots: any whole minute is bookable.
    CLINIC_DOCTORS_FILE=str(Path(__file__).with_name("doctors.json")),
    # The suite books many times from one address and email; the limits have tests of their own.
    CLINIC_BOOKINGS_PER_MINUTE="1000000",
    CLINIC_BOOKINGS_PER_DAY="1000000",
    CLINIC_ACTIVE_BOOKINGS_PER_EMAIL="0",
    CLINIC_MAX_PENDING="1000000",
    CLINIC_BOOKING_HORIZON_DAYS="3650",
    # No worker HTTP unless a test asks: tests.processes.Service gives each process a port.
    CLINIC_WORKER_HTTP_PORT="0",
    # Tokens derived from a key, so the emails carry the manage link (as in production).
    CLINIC_MANAGE_TOKEN_KEY="test-manage-token-key-0123456789abcdefghijk",
    CLINIC_PUBLIC_URL="https://citas.clinic.test",
    CLINIC_STAFF_TOKENS="reception:reception-token-0123456789abcdefghijklmnop,records:records-office-token-0123456789abcdefghijk",
)

import aio_pika  # noqa: E402
import pytest  # noqa: E402
from beanie import init_beanie  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from faststream import FastStream  # noqa: E402
from faststream.rabbit import RabbitBroker, TestRabbitBroker  # noqa: E402
from httpx import ASGITransport, AsyncClient, Request, Response  # noqa: E402
from pymongo import AsyncMongoClient  # noqa: E402
from pymongo.errors import AutoReconnect  # noqa: E402

from clinic.api import create_app  # noqa: E402
from clinic.api.seed import seed_doctors  # noqa: E402
from clinic.domain.emails import default_email_sender  # noqa: E402
from clinic.domain.hand_overs import HandOvers  # noqa: E402
from clinic.handlers import booking_router, notifications_router, worker_app  # noqa: E402
from clinic.mail import Email  # noqa: E402
from clinic.mail.dev_inbox import DevInbox  # noqa: E402
from clinic.messaging.broker import Publishers  # noqa: E402
from clinic.messaging.topology import QUEUES, declare_topology  # noqa: E402
from clinic.settings import settings  # noqa: E402
from clinic.store.database import connect_database  # noqa: E402
from clinic.store.documents import DOCUMENT_MODELS  # noqa: E402
from tests import smtp_server  # noqa: E402
from tests.stack import Stack  # noqa: E402

BIN = Path(sys.executable).parent


def _broker_reachable() -> bool:
    parts = urlsplit(_rabbit_base)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), 2):
            return True
    except OSError:
        return False


def unavailable(what: str) -> NoReturn:
    """Skip the test because ``what`` is missing here; under CI, fail it instead."""
    if IN_CI:
        pytest.fail(f"{what} (CI must run these tests, not skip them)")
    pytest.skip(what)


def _rabbitmqctl(*args: str) -> str:
    return subprocess.run(
        ["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=60
    ).stdout


IMPLIED_MARKERS = (("faults", "e2e"), ("e2e", "integration"))
"""The tiers nest: every fault test is end to end, every end-to-end test integration."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give each test the markers its tier implies, so ``-m "not integration"`` is fast.

    And put the fault tests in one pytest-xdist group: run in parallel (``-n 2``), they
    still run one at a time, so that two of them never share the cores they time.
    """
    # pytest-xdist tells tests apart by node id: of tests sharing one, it runs only one
    # (schemathesis's per-operation tests all get the test's own id under pytest 9.2).
    shared = [nodeid for nodeid, count in Counter(i.nodeid for i in items).items() if count > 1]
    if shared:
        raise pytest.UsageError(f"tests share node ids, and would not all run: {shared}")
    for item in items:
        for marker, implied in IMPLIED_MARKERS:
            if item.get_closest_marker(marker) is not None:
                item.add_marker(implied)
        if item.get_closest_marker("faults") is not None:
            item.add_marker(pytest.mark.xdist_group("faults"))


def vhost_rabbitmqctl(command: str, *args: str) -> str:
    """``rabbitmqctl`` on the test session's vhost; its output."""
    return _rabbitmqctl(command, "-p", VHOST, *args)


@pytest.fixture(scope="session")
def rabbit_vhost() -> Iterator[str]:
    """A RabbitMQ vhost of this test session's own, removed afterwards."""
    if not _broker_reachable():
        unavailable(
            "RabbitMQ is not reachable at 127.0.0.1:5672: start it (rabbitmq-server -detached) "
            "or point CLINIC_TEST_RABBIT_URL at one to run the broker tests"
        )
    if shutil.which("rabbitmqctl") is None:
        unavailable("rabbitmqctl is needed to create the tests' own vhost")
    _rabbitmqctl("add_vhost", VHOST)
    try:
        _rabbitmqctl("set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")
        yield VHOST
    finally:
        _rabbitmqctl("delete_vhost", VHOST)


@pytest.fixture(scope="session")
def mongo_server() -> Iterator[EmbeddedDatabase | None]:
    """The session's MongoDB-compatible server; None when an external one is used."""
    if EXTERNAL_MONGO:
        yield None
        return
    SESSION_DB.start()
    try:
        yield SESSION_DB
    finally:
        SESSION_DB.stop()
        shutil.rmtree(SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
async def database(
    mongo_server: EmbeddedDatabase | None,
) -> AsyncIterator[AsyncMongoClient[dict[str, object]]]:
    """Beanie, initialised on the session's database (dropped afterwards)."""
    client = await connect_database()
    try:
        yield client
    finally:
        await client.drop_database(os.environ["CLINIC_MONGO_DB"])
        await client.close()


@pytest.fixture
async def clean_db(
    database: AsyncMongoClient[dict[str, object]],
) -> AsyncMongoClient[dict[str, object]]:
    """Empty collections for one test, on the session's client.

    Beanie's registration is global: a test that ran the API's lifespan left it
    pointing at a client that is now closed, so it is bound again here.

    Tried up to three times: the session client's monitor, with the tests' one-second
    timeouts, can find the server slow while another test boots a RabbitMQ node, and
    then interrupts the connections in use (pymongo's AutoReconnect). That is the
    machine's load, not the behaviour under test, and each attempt starts afresh.
    """
    for attempt in range(3):
        try:
            await init_beanie(
                database=database[os.environ["CLINIC_MONGO_DB"]], document_models=DOCUMENT_MODELS
            )
            for model in DOCUMENT_MODELS:
                await model.get_pymongo_collection().delete_many({})
            await seed_doctors(Path(settings.doctors_file))
            return database
        except AutoReconnect:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


class Mailbox:
    """A fake email sender that keeps what it was asked to send: the one thing faked."""

    def __init__(self) -> None:
        self.sent: list[Email] = []

    async def send(self, email: Email) -> None:
        self.sent.append(email)


@pytest.fixture
def mailbox() -> Mailbox:
    """Where the in-process notification handler's emails go, instead of the log."""
    return Mailbox()


@pytest.fixture
def mail_server(tmp_path: Path) -> Iterator[tuple[DevInbox, smtp_server.MailServer]]:
    """A real SMTP server on loopback (``tests.smtp_server``), on a port of its own, in
    this process; the handler tells what it was sent, and over which connections."""
    server, handler = smtp_server.start(tmp_path / "mail", free_port())
    try:
        yield server, handler
    finally:
        server.stop()


def broker_of(app: FastStream) -> RabbitBroker:
    """A worker app's broker."""
    assert isinstance(app.broker, RabbitBroker)
    return app.broker


def publishers_of(app: FastStream) -> Publishers:
    """The publishers a worker app put in its broker's context."""
    publishers: Publishers = app.broker.context.get("publishers")  # type: ignore[union-attr]
    return publishers


@pytest.fixture
def booking_handler(mailbox: Mailbox) -> FastStream:
    """A worker app running the booking handler only (no broker connection yet)."""
    return worker_app("booking handler under test", booking_router())


@pytest.fixture
def notification_handler(mailbox: Mailbox) -> Iterator[FastStream]:
    """A worker app running the notification handler only, emailing into ``mailbox``."""
    app = worker_app("notification handler under test", notifications_router())
    with app.broker.provider.scope(default_email_sender, lambda: mailbox):  # type: ignore[union-attr]
        yield app


@pytest.fixture
def both_handlers(mailbox: Mailbox) -> Iterator[FastStream]:
    """A worker app running both handlers, emailing into ``mailbox``."""
    app = worker_app("both handlers under test", booking_router(), notifications_router())
    with app.broker.provider.scope(default_email_sender, lambda: mailbox):  # type: ignore[union-attr]
        yield app


@pytest.fixture
async def rabbit(rabbit_vhost: str) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    """A channel of the test's own on emptied queues, to look into them without the app."""
    await declare_topology()
    connection = await aio_pika.connect(settings.rabbit_url)
    try:
        channel = await connection.channel()
        for queue in QUEUES:
            await (await channel.declare_queue(queue.name, passive=True)).purge()
        yield channel
    finally:
        await connection.close()


@pytest.fixture
async def workers(
    rabbit: aio_pika.abc.AbstractChannel, both_handlers: FastStream
) -> AsyncIterator[FastStream]:
    """Both handlers consuming from the real broker in this process; their app."""
    assert both_handlers.broker is not None
    await both_handlers.broker.start()
    try:
        yield both_handlers
    finally:
        await both_handlers.broker.stop()


@pytest.fixture
def own_vhost(rabbit_vhost: str) -> Iterator[tuple[str, Callable[..., str]]]:
    """A vhost for one test whose queues are declared with other arguments; URL and ctl."""
    name = f"{rabbit_vhost}-{uuid.uuid4().hex[:6]}"
    _rabbitmqctl("add_vhost", name)

    def ctl(command: str, *args: str) -> str:
        return _rabbitmqctl(command, "-p", name, *args)

    try:
        _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield settings.rabbit_url.rsplit("/", 1)[0] + "/" + name, ctl
    finally:
        _rabbitmqctl("delete_vhost", name)


@pytest.fixture
def api(clean_db: AsyncMongoClient[dict[str, object]]) -> FastAPI:
    """The API app on the session's database; no handler consumes what it publishes."""
    app = create_app()
    app.state.mongo = clean_db
    return app


class HandedOver(ASGITransport):
    """In-process transport answering once the request's hand-overs to the broker are done.

    The API publishes a booking's request in a task of its own as its answer goes out;
    the tests in process look at what happened next without waiting for it, as a
    client of the real API would by following ``Location``.
    """

    async def handle_async_request(self, request: Request) -> Response:
        response = await super().handle_async_request(request)
        await self.app.state.hand_overs.finish()  # type: ignore[attr-defined]
        return response


@pytest.fixture
async def client(api: FastAPI) -> AsyncIterator[AsyncClient]:
    """An HTTP client of the API in process, its broker in memory."""
    async with (
        TestRabbitBroker(api.state.broker),
        AsyncClient(transport=HandedOver(app=api), base_url="http://clinic") as http,
    ):
        yield http


@pytest.fixture
async def client_and_handlers(
    api: FastAPI, both_handlers: FastStream
) -> AsyncIterator[AsyncClient]:
    """The API publishing through the broker of both handlers, all in memory in this process."""
    api.state.broker = both_handlers.broker
    api.state.publishers = publishers = publishers_of(both_handlers)
    api.state.hand_overs = HandOvers(publishers)
    async with (
        TestRabbitBroker(api.state.broker),
        AsyncClient(transport=HandedOver(app=api), base_url="http://clinic") as http,
    ):
        yield http


STAFF = {"Authorization": "Bearer records-office-token-0123456789abcdefghijk"}
"""Headers of a staff member (the tests' second staff token, named "records")."""
RECEPTION = {"Authorization": "Bearer reception-token-0123456789abcdefghijklmnop"}
"""Headers of another staff member (the first staff token, named "reception")."""


@pytest.fixture
def requests_published(api: FastAPI, client: AsyncClient) -> MagicMock:
    """What the API published to ``booking_requests`` (its broker is in memory)."""
    mock: MagicMock = api.state.publishers.booking_requests.mock
    return mock


@pytest.fixture
def stack(tmp_path: Path, rabbit: aio_pika.abc.AbstractChannel) -> Iterator[Stack]:
    """The clinic as processes on the session's vhost and database, stopped afterwards."""
    clinic = Stack(tmp_path, vhost_rabbitmqctl)
    try:
        yield clinic
    finally:
        clinic.stop_all()
