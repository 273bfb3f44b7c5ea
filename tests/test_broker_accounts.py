"""The clinic's broker account may do all the clinic does, and nothing else.

The account and its permissions come from the deployed definitions
(``deploy/rabbitmq``, filled in by the same script the rabbitmq service runs).
On the shared broker they are given to a user and a vhost of the test's own,
deleted afterwards; a private node boots from the whole file, as the service does.
"""

import json
import os
import re
import secrets
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import pytest
from aiormq.exceptions import ChannelAccessRefused
from faststream import FastStream

from clinic.domain.emails import default_email_sender
from clinic.handlers import booking_router, notifications_router, worker_app
from clinic.messages import BookingStatus
from clinic.messaging.parking import list_parked, replay_parked
from clinic.messaging.topology import DEAD_LETTER, NOTIFICATIONS, QUEUES, declare_topology
from clinic.settings import settings
from tests import private_broker
from tests.conftest import Mailbox, broker_of, publishers_of, unavailable
from tests.integration import stored_booking, terminal, wait_for

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "rabbitmq"

KINDS = ("configure", "write", "read")
CLINIC_NAMES = {queue.name for queue in QUEUES} | {DEAD_LETTER.name, NOTIFICATIONS.name}
"""Every queue and exchange the clinic declares."""
NEAR_MISSES = {
    "booking_requests_copy",
    "my_booking_requests",
    "parked_messages.old",
    "amq.topic",
    "amq.direct",
    "amqXdefault",
    "amq.gen-1234",
    "",
}
"""Names the clinic never uses, some a character away from one it does."""
CANDIDATES = CLINIC_NAMES | NEAR_MISSES | {"amq.default"}
"""Every name tried: ``amq.default`` is how permissions name the default exchange."""


def run_render(**accounts: str) -> subprocess.CompletedProcess[str]:
    """The rabbitmq service's script, filling the accounts given into the template."""
    return subprocess.run(
        ["sh", str(DEPLOY / "render-definitions.sh"), str(DEPLOY / "definitions.template.json")],
        env={**os.environ, **accounts},
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def render(**accounts: str) -> dict[str, Any]:
    """The definitions the rabbitmq service imports, for the accounts given."""
    result = run_render(**accounts)
    assert result.returncode == 0, result.stderr
    definitions: dict[str, Any] = json.loads(result.stdout)
    return definitions


def accounts(suffix: str) -> dict[str, str]:
    """Names and random passwords of an administrator and an app account, for one test."""
    return {
        "RABBITMQ_ADMIN_USER": f"clinic-test-admin-{suffix}",
        "RABBITMQ_ADMIN_PASSWORD": secrets.token_urlsafe(24),
        "RABBITMQ_APP_USER": f"clinic-test-app-{suffix}",
        "RABBITMQ_APP_PASSWORD": secrets.token_urlsafe(24),
    }


def app_permissions() -> dict[str, str]:
    """The clinic account's configure, write and read patterns, as deployed."""
    names = accounts("x")
    definitions = render(**names)
    [user] = [u for u in definitions["users"] if u["name"] == names["RABBITMQ_APP_USER"]]
    assert user["tags"] == []
    [permission] = [p for p in definitions["permissions"] if p["user"] == user["name"]]
    return {kind: permission[kind] for kind in KINDS}


def allowed(pattern: str, names: set[str]) -> set[str]:
    """Which of ``names`` the pattern lets through (RabbitMQ searches, it does not anchor)."""
    return {name for name in names if re.search(pattern, name)}


def test_the_app_account_may_configure_and_read_only_the_clinics_names() -> None:
    permissions = app_permissions()
    for kind in ("configure", "read"):
        assert allowed(permissions[kind], CANDIDATES) == CLINIC_NAMES, kind


def test_the_app_account_may_write_only_where_the_clinic_publishes_and_binds() -> None:
    # Publishing and dead-lettering go through the default exchange (amq.default to
    # permissions) and the two exchanges; binding writes to the queue bound.
    expected = {
        "amq.default",
        NOTIFICATIONS.name,
        DEAD_LETTER.name,
        "booking_retry",
        "email_retry",
        "email_notifications",
    }
    assert allowed(app_permissions()["write"], CANDIDATES) == expected


def test_the_definitions_refuse_unsafe_shared_or_example_accounts() -> None:
    names = accounts("x")
    for broken in (
        {"RABBITMQ_APP_PASSWORD": 'quote"breaks-json'},
        {"RABBITMQ_APP_PASSWORD": "at@breaks-the-url"},
        {"RABBITMQ_ADMIN_PASSWORD": ""},
        {"RABBITMQ_APP_USER": names["RABBITMQ_ADMIN_USER"]},
        {"RABBITMQ_ADMIN_PASSWORD": "change-me-rabbitmq-admin-password"},
    ):
        result = run_render(**(names | broken))
        assert result.returncode != 0, broken
        assert result.stdout == "", broken


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


class OwnAccount:
    """A user of no tags on a vhost of its own, on the shared broker."""

    def __init__(self, rabbit_vhost: str) -> None:
        suffix = uuid.uuid4().hex[:8]
        # Hex: a URL-safe token may begin with "-", which rabbitmqctl takes for an option.
        self.user, self.password = f"clinic-test-app-{suffix}", secrets.token_hex(24)
        self.vhost = f"{rabbit_vhost}-app-{suffix}"
        broker = urlsplit(settings.rabbit_url)
        self.url = (
            f"amqp://{self.user}:{self.password}@{broker.hostname}:{broker.port or 5672}"
            f"/{self.vhost}"
        )

    def grant(self, permission: dict[str, str]) -> None:
        """Set the user's permissions on its vhost; connections opened after see them."""
        _rabbitmqctl(
            "set_permissions", "-p", self.vhost, self.user, *(permission[kind] for kind in KINDS)
        )


@contextmanager
def own_account(rabbit_vhost: str) -> Iterator[OwnAccount]:
    """An account of the test's own, deleted afterwards with its vhost.

    The shared broker's own users and vhosts are left alone.
    """
    account = OwnAccount(rabbit_vhost)
    try:
        _rabbitmqctl("add_vhost", account.vhost)
        _rabbitmqctl("add_user", account.user, account.password)
        _rabbitmqctl("set_user_tags", account.user)
        yield account
    finally:
        for command in (["delete_vhost", account.vhost], ["delete_user", account.user]):
            subprocess.run(
                ["rabbitmqctl", "-q", *command], check=False, capture_output=True, timeout=60
            )


@pytest.fixture
def app_account(rabbit_vhost: str) -> Iterator[str]:
    """The clinic's account as deployed (no tags), on a vhost of its own; its URL."""
    with own_account(rabbit_vhost) as account:
        account.grant(app_permissions())
        yield account.url


@pytest.fixture
async def workers_as_app(
    app_account: str, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FastStream]:
    """Both handlers consuming through the clinic's account, emailing into ``mailbox``."""
    monkeypatch.setattr(settings, "rabbit_url", app_account)
    await declare_topology(app_account)
    app = worker_app("workers as the clinic's account", booking_router(), notifications_router())
    broker = broker_of(app)
    with broker.provider.scope(default_email_sender, lambda: mailbox):
        await broker.start()
        try:
            yield app
        finally:
            await broker.stop()


@pytest.mark.integration
@pytest.mark.usefixtures("clean_db")
async def test_the_app_account_runs_the_whole_booking_flow(
    app_account: str, workers_as_app: FastStream, mailbox: Mailbox
) -> None:
    publishers = publishers_of(workers_as_app)
    booking = await stored_booking(days=14)
    # booking_requests -> booking worker -> booking_notifications -> email_notifications.
    await publishers.request_decision(booking.id)
    decided = await wait_for(lambda: terminal(booking.id), within=30)
    assert decided.status is BookingStatus.CONFIRMED
    await wait_for(lambda: _sent(mailbox), within=15)

    # An unknown booking is parked; an operator lists and replays it with the same account.
    await publishers.request_decision("no-such-booking")
    parked = await wait_for(lambda: list_parked(app_account), within=15)
    assert [p.origin for p in parked] == ["booking_requests"]
    replayed = await replay_parked(app_account)
    assert [p.id for p in replayed] == [parked[0].id]
    assert await wait_for(lambda: list_parked(app_account), within=15)


async def _sent(mailbox: Mailbox) -> bool:
    return len(mailbox.sent) == 1


@pytest.mark.integration
async def test_the_app_account_may_not_declare_anything_else(app_account: str) -> None:
    connection = await aio_pika.connect(app_account)
    try:
        for name in ("not_the_clinics", "booking_requests_copy"):
            channel = await connection.channel()
            with pytest.raises(ChannelAccessRefused):
                await channel.declare_queue(name, durable=True)
            channel = await connection.channel()
            with pytest.raises(ChannelAccessRefused):
                await channel.declare_exchange(name, aio_pika.ExchangeType.FANOUT)
        # Nor publish to an exchange of the broker's that the clinic does not use.
        channel = await connection.channel(publisher_confirms=True)
        topic = await channel.get_exchange("amq.topic", ensure=False)
        with pytest.raises(ChannelAccessRefused):
            await topic.publish(aio_pika.Message(b"{}"), routing_key="booking_requests")
    finally:
        await connection.close()


def _without_each_name() -> list[tuple[str, str, dict[str, str]]]:
    """The deployed permissions less one name, for every name of every kind."""
    deployed = app_permissions()
    cases = []
    for kind in KINDS:
        names = deployed[kind].removeprefix("^(").removesuffix(")$").split("|")
        for name in names:
            rest = "|".join(n for n in names if n != name)
            cases.append((kind, name.replace("\\.", "."), deployed | {kind: f"^({rest})$"}))
    return cases


async def _clinic_traffic(url: str) -> None:
    """What the clinic does on the broker: declare, publish, consume and park."""
    await declare_topology(url)
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        notifications = await channel.get_exchange(NOTIFICATIONS.name, ensure=False)
        await notifications.publish(aio_pika.Message(b"{}"), routing_key="")
        for queue in ("booking_requests", "parked_messages"):
            await channel.default_exchange.publish(aio_pika.Message(b"{}"), routing_key=queue)
        for queue in ("booking_requests", "email_notifications", "parked_messages"):
            declared = await channel.declare_queue(queue, passive=True)
            assert await declared.get(no_ack=True, fail=False) is not None, queue
    finally:
        await connection.close()


@pytest.mark.integration
async def test_the_app_account_needs_every_name_it_is_given(rabbit_vhost: str) -> None:
    unneeded = []
    with own_account(rabbit_vhost) as account:
        account.grant(app_permissions())
        await _clinic_traffic(account.url)
        # Some checks are made only when a queue or binding is created: each try starts
        # from an empty vhost, as a new deployment does.
        session = urlsplit(settings.rabbit_url)
        _rabbitmqctl("set_permissions", "-p", account.vhost, session.username or "", *[".*"] * 3)
        admin = settings.rabbit_url.rsplit("/", 1)[0] + "/" + account.vhost
        for kind, name, fewer in _without_each_name():
            await _delete_topology(admin)
            account.grant(fewer)
            try:
                await _clinic_traffic(account.url)
            except ChannelAccessRefused:
                continue  # refused without it: the name is needed
            unneeded.append(f"{kind} {name}")
    assert unneeded == []


async def _delete_topology(url: str) -> None:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        for queue in QUEUES:
            await channel.queue_delete(queue.name)
        for exchange in (DEAD_LETTER, NOTIFICATIONS):
            await channel.exchange_delete(exchange.name)
    finally:
        await connection.close()


@pytest.mark.integration
async def test_a_node_booting_from_the_definitions_has_exactly_the_two_accounts() -> None:
    if not private_broker.available():
        unavailable("needs RabbitMQ installed and root, to boot a private broker node")
    names = accounts(uuid.uuid4().hex[:8])
    node = private_broker.PrivateRabbit()
    try:
        definitions = node.base / "definitions.json"
        definitions.write_text(json.dumps(render(**names)))
        # The service's own configuration, pointed at this node's rendered file.
        conf = (DEPLOY / "clinic.conf").read_text()
        assert "/etc/rabbitmq/definitions.json" in conf
        with (node.base / "rabbitmq.conf").open("a") as config:
            config.write(conf.replace("/etc/rabbitmq/definitions.json", str(definitions)))
        for path in (definitions, node.base / "rabbitmq.conf"):
            shutil.chown(path, "rabbitmq", "rabbitmq")
        node.start()

        users = dict(
            line.split("\t", 1) for line in node.ctl("list_users").splitlines()[1:] if line
        )
        assert users == {
            names["RABBITMQ_ADMIN_USER"]: "[administrator]",
            names["RABBITMQ_APP_USER"]: "[]",
        }
        # The plain passwords of the file were taken (and hashed) on import.
        for role in ("ADMIN", "APP"):
            account = f"{names[f'RABBITMQ_{role}_USER']}:{names[f'RABBITMQ_{role}_PASSWORD']}"
            connection = await aio_pika.connect(node.url.replace("guest:guest", account))
            await connection.close()
        await declare_topology(
            node.url.replace(
                "guest:guest", f"{names['RABBITMQ_APP_USER']}:{names['RABBITMQ_APP_PASSWORD']}"
            )
        )
    finally:
        node.remove()
