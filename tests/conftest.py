"""Test session setup: an isolated RabbitMQ vhost and a MongoDB-compatible server.

Settings are read when ``clinic`` is imported, so the environment is set here,
before any test module imports it.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

# Reads no settings, so it may come before the environment below.
from clinic.embedded_db import EmbeddedDatabase

RUN_ID = uuid.uuid4().hex[:8]
VHOST = f"clinic-test-{RUN_ID}"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


_rabbit_base = os.environ.get("CLINIC_TEST_RABBIT_URL", "amqp://guest:guest@127.0.0.1:5672/")
EXTERNAL_MONGO = os.environ.get("CLINIC_MONGO_URL")
SESSION_DIR = Path(tempfile.mkdtemp(prefix="clinic-test-"))
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
    CLINIC_STAFF_TOKENS="staff-token-1,staff-token-2",
)

import aio_pika  # noqa: E402
import pytest  # noqa: E402
from beanie import init_beanie  # noqa: E402
from faststream.rabbit import TestRabbitBroker  # noqa: E402
from httpx import ASGITransport, AsyncClient  # noqa: E402
from pymongo import AsyncMongoClient  # noqa: E402

from clinic.database import connect_database  # noqa: E402
from clinic.doctors import seed_doctors  # noqa: E402
from clinic.emails import Email, default_email_sender  # noqa: E402
from clinic.models import DOCUMENT_MODELS  # noqa: E402
from clinic.settings import settings  # noqa: E402
from clinic.topology import (  # noqa: E402
    BOOKING_REQUESTS,
    BOOKING_RETRY,
    EMAIL_NOTIFICATIONS,
    EMAIL_RETRY,
    PARKED,
    broker,
    declare_topology,
)

BIN = Path(sys.executable).parent


def _broker_reachable() -> bool:
    parts = urlsplit(_rabbit_base)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), 2):
            return True
    except OSError:
        return False


def _unavailable(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} (CI must run these tests, not skip them)")
    pytest.skip(what)


def _rabbitmqctl(*args: str) -> str:
    return subprocess.run(
        ["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=60
    ).stdout


def vhost_rabbitmqctl(command: str, *args: str) -> str:
    """``rabbitmqctl`` on the test session's vhost; its output."""
    return _rabbitmqctl(command, "-p", VHOST, *args)


@pytest.fixture(scope="session")
def rabbit_vhost() -> Iterator[str]:
    """A RabbitMQ vhost of this test session's own, removed afterwards."""
    if not _broker_reachable():
        _unavailable(
            "RabbitMQ is not reachable at 127.0.0.1:5672: start it (rabbitmq-server -detached) "
            "or point CLINIC_TEST_RABBIT_URL at one to run the broker tests"
        )
    if shutil.which("rabbitmqctl") is None:
        _unavailable("rabbitmqctl is needed to create the tests' own vhost")
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
    """
    await init_beanie(
        database=database[os.environ["CLINIC_MONGO_DB"]], document_models=DOCUMENT_MODELS
    )
    for model in DOCUMENT_MODELS:
        await model.get_pymongo_collection().delete_many({})
    await seed_doctors(Path(settings.doctors_file))
    return database


class Outbox:
    """A fake email sender that keeps what it was asked to send: the one thing faked."""

    def __init__(self) -> None:
        self.sent: list[Email] = []

    async def send(self, email: Email) -> None:
        self.sent.append(email)


@pytest.fixture
def outbox() -> Iterator[Outbox]:
    """Emails go to an Outbox instead of the log, for in-process workers."""
    box = Outbox()
    with broker.provider.scope(default_email_sender, lambda: box):
        yield box


@pytest.fixture
async def rabbit(rabbit_vhost: str) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    """A channel of the test's own on emptied queues, to look into them without the app."""
    await declare_topology()
    connection = await aio_pika.connect(settings.rabbit_url)
    try:
        channel = await connection.channel()
        for queue in (BOOKING_REQUESTS, BOOKING_RETRY, EMAIL_NOTIFICATIONS, EMAIL_RETRY, PARKED):
            await (await channel.declare_queue(queue.name, passive=True)).purge()
        yield channel
    finally:
        await connection.close()


@pytest.fixture
async def workers(rabbit: aio_pika.abc.AbstractChannel) -> AsyncIterator[None]:
    """Both handlers consuming from the real broker in this process."""
    from clinic import handlers

    assert handlers.app  # built on first access: registers both handlers
    await broker.start()
    try:
        yield
    finally:
        await broker.stop()


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
async def client(clean_db: AsyncMongoClient[dict[str, object]]) -> AsyncIterator[AsyncClient]:
    """The API in process, on the session's database, publishing to an in-memory broker."""
    from clinic.api import app

    app.state.mongo = clean_db
    async with (
        TestRabbitBroker(broker),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://clinic") as http,
    ):
        yield http


STAFF = {"Authorization": "Bearer staff-token-2"}
"""Headers of a staff member (the tests' second staff token)."""
