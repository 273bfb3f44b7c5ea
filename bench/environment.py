"""What every benchmark run needs: its own vhost, database and mail server, the real
processes, RSS.

Needs RabbitMQ at 127.0.0.1:5672 (guest/guest) and ``rabbitmqctl``; starts a
SecantusDB server unless ``CLINIC_MONGO_URL`` is set, and ``clinic dev``'s inbox
as the notification worker's SMTP server.
"""

import contextlib
import os
import statistics
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pymongo import MongoClient
from tests.processes import Service, compose_commands, wait_until_up

from clinic.embedded_db import EmbeddedDatabase, free_port

RABBIT_URL = "amqp://guest:guest@127.0.0.1:5672/"
DOCTORS = Path(__file__).with_name("doctors.json")
"""One doctor who works around the clock in 1-minute slots: every posted minute is bookable."""


def rabbitmqctl(*args: str) -> str:
    return subprocess.run(
        ["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=60
    ).stdout


@contextlib.contextmanager
def database_server(workdir: Path, wrapper: Sequence[str] = ()) -> Iterator[tuple[str, int | None]]:
    """The MongoDB URL to use, and its server's pid when it is ours to measure:
    CLINIC_MONGO_URL, or a SecantusDB server of our own (run under ``wrapper``)."""
    if url := os.environ.get("CLINIC_MONGO_URL"):
        yield url, None
        return
    database = EmbeddedDatabase(workdir / "db", log=workdir / "db.log", wrapper=wrapper)
    database.start(timeout=300 if wrapper else 30)
    assert database.process is not None
    try:
        yield database.url, database.process.pid
    finally:
        database.stop()


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process and its descendants have used (``--workers N``
    runs its processes as children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except FileNotFoundError:  # gone meanwhile
        return 0.0
    # After the command name: utime, stime, cutime and cstime are fields 14 to 17.
    own = sum(int(tick) for tick in fields[11:15]) / TICKS
    return own + sum(cpu_seconds(child) for child in children(pid))


def children(pid: int) -> list[int]:
    """The pids of a process's children."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(FileNotFoundError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def broker_pid() -> int | None:
    """The local RabbitMQ node's pid, if this user can see it."""
    found = subprocess.run(["pgrep", "-o", "beam.smp"], capture_output=True, text=True)
    return int(found.stdout.split()[0]) if found.stdout.strip() else None


LOAD_GENERATOR = "load generator"
"""The bench's own CPU (its HTTP client, wrk), which shares the cores with the clinic."""


def clinic_cpu(cpu_ms: dict[str, float]) -> float:
    """The CPU of the clinic's processes, the database and the broker: all but the load's."""
    return sum(ms for name, ms in cpu_ms.items() if name != LOAD_GENERATOR)


@dataclass
class CpuMeter:
    """CPU seconds used by named processes between ``start`` and ``stop``."""

    pids: dict[str, int]
    used: dict[str, float] = field(default_factory=dict)

    def start(self) -> "CpuMeter":
        self._before = self._read()
        return self

    def stop(self) -> dict[str, float]:
        after = self._read()
        self.used = {name: after[name] - self._before[name] for name in after}
        return self.used

    def _read(self) -> dict[str, float]:
        # This process's own time, and its waited-for children's (wrk): the load generator.
        own = os.times()
        reading = {LOAD_GENERATOR: own.user + own.system + own.children_user + own.children_system}
        reading.update((name, cpu_seconds(pid)) for name, pid in self.pids.items())
        return reading


def rss_mb(pid: int, peak: bool = False) -> float:
    """Resident memory of a process in MB (its peak with ``peak``)."""
    key = "VmHWM:" if peak else "VmRSS:"
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    raise LookupError(f"no {key} for {pid}")


@dataclass
class Clinic:
    """The clinic's processes for one run, in a vhost and a database server of their own.

    A fresh server per run: SecantusDB was seen to slow down run after run once
    earlier runs had written and dropped their databases on it.
    """

    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    services: dict[str, Service] = field(default_factory=dict)
    mongo_url: str = ""
    database_pid: int | None = None
    wrapper: tuple[str, ...] = ()
    """What every process of the run, the database server's too, runs under (a profiler)."""
    _resources: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def __post_init__(self) -> None:
        self.vhost = f"clinic-bench-{self.run_id}"
        self.mail = self.workdir / f"mail-{self.run_id}"
        self.db_name = f"clinic_bench_{self.run_id}"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.rabbit_url = RABBIT_URL + self.vhost
        self.env = {
            "CLINIC_RABBIT_URL": self.rabbit_url,
            "CLINIC_MONGO_DB": self.db_name,
            "CLINIC_DOCTORS_FILE": str(DOCTORS),
            "CLINIC_STAFF_TOKENS": "bench:bench-staff-token-0123456789abcdefghij",
            # One client posting the original design's example body, over and over: the
            # clinic's limits would refuse it, and the benchmark measures the booking path.
            "CLINIC_BOOKINGS_PER_MINUTE": "1000000000",
            "CLINIC_BOOKINGS_PER_DAY": "1000000000",
            "CLINIC_ACTIVE_BOOKINGS_PER_EMAIL": "0",
            "CLINIC_BOOKING_HORIZON_DAYS": "3650",
            "CLINIC_MAX_PENDING": "1000000000",
            **self.env,
        }

    def emails_received(self) -> int:
        """The emails the run's mail server has taken (each one file, written whole)."""
        return sum(1 for _ in self.mail.glob("*.eml"))

    def start(self, name: str, command: str | None = None) -> Service:
        """Start a service by its compose name (its compose command line), or ``command``."""
        if command is None:
            command = compose_commands()[name.rstrip("0123456789-")]
        if name == "api" or command.startswith("uvicorn"):
            command = command.replace("--host 0.0.0.0", "--host 127.0.0.1")
            command = command.replace("--port 3000", f"--port {self.port}")
        log = self.workdir / f"{self.run_id}-{name}.log"
        service = Service(command, log, self.env, self.wrapper).start()
        self.services[name] = service
        return service

    def wait_until_ready(self, timeout: float = 60) -> None:
        wait_until_up(self.base_url, timeout)

    def wait_for_workers(self, timeout: float = 60) -> None:
        """Wait until every worker logged that it started."""
        deadline = time.monotonic() + timeout
        for name, service in self.services.items():
            if name == "api":
                continue
            while b"started successfully" not in service.log.read_bytes():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start:\n{service.log.read_text()}")
                time.sleep(0.05)

    def rss(self, peak: bool = False) -> dict[str, float]:
        """RSS in MB of each running service."""
        return {
            name: rss_mb(service.process.pid, peak)
            for name, service in self.services.items()
            if service.process is not None and service.running
        }

    def cpu_meter(self) -> CpuMeter:
        """A meter of every running service, the database server and the broker."""
        pids = {
            name: service.process.pid
            for name, service in self.services.items()
            if service.process is not None and service.running
        }
        if self.database_pid is not None:
            pids["database"] = self.database_pid
        if (broker := broker_pid()) is not None:
            pids["rabbitmq"] = broker
        return CpuMeter(pids)

    def queue_depth(self, queue: str) -> int:
        for line in rabbitmqctl("list_queues", "-p", self.vhost, "name", "messages").splitlines():
            name, _, count = line.rpartition("\t")
            if name == queue:
                return int(count)
        return 0

    def __enter__(self) -> "Clinic":
        self.mongo_url, self.database_pid = self._resources.enter_context(
            database_server(self.workdir / f"db-{self.run_id}", self.wrapper)
        )
        self.env["CLINIC_MONGO_URL"] = self.mongo_url
        self._start_mail_server()
        rabbitmqctl("add_vhost", self.vhost)
        rabbitmqctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")
        return self

    def _start_mail_server(self) -> None:
        """A mail server of the run's own for the notification worker: emails leave as
        they do in production, over SMTP, built and sent by the worker. Not measured:
        in production the mail server is not on the clinic's machines."""
        port = free_port()
        command = f"python -m clinic.mail.dev_inbox --port {port} --folder {self.mail}"
        inbox = Service(command, self.workdir / f"{self.run_id}-mail.log").start()
        self._resources.callback(inbox.terminate)
        deadline = time.monotonic() + 30
        while b"inbox listening" not in inbox.log.read_bytes():
            if time.monotonic() > deadline or not inbox.running:
                raise RuntimeError(f"the mail server did not start:\n{inbox.log.read_text()}")
            time.sleep(0.05)
        self.env["CLINIC_SMTP_URL"] = f"smtp://127.0.0.1:{port}?tls=off"
        self.env["CLINIC_EMAIL_FROM"] = "Clínica <citas@clinic.example>"

    def __exit__(self, *exc: object) -> None:
        for service in self.services.values():
            service.terminate(timeout=20)
        rabbitmqctl("delete_vhost", self.vhost)
        with MongoClient(self.mongo_url) as client:
            client.drop_database(self.db_name)
        self._resources.close()


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
