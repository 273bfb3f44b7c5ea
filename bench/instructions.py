"""Instructions each process executes per booking, counted by callgrind: figures that
the machine's noise does not move.

CPU time on these shared machines moves by a third from one run to the next, so a
change worth a few per cent does not show in it. The instructions a process
executes for the same work move by a few per cent (3 % for the API and the
database, 7 % for the workers, over repeated runs of one commit). Every process
of the clinic, and the database server, runs under valgrind's callgrind. After
``WARM_UP`` bookings the counters are zeroed; ``BOOKINGS`` bookings are posted
one at a time, so that nothing is batched and every run takes the same path; once
each is decided and its email sent, the counters are read. The bare FastAPI app is counted the same
way, as the yardstick of ``POST /book``.

What is counted is the work in user space: the kernel's side of a system call
(the sockets) is not in it, and RabbitMQ is not counted. Valgrind runs a program
some fifty times slower, so a run takes about four minutes; one is enough.
"""

import asyncio
import re
import shutil
import subprocess
import time
from pathlib import Path

from tests.processes import Service, wait_until_up

from bench.environment import Clinic, median, rabbitmqctl
from bench.figures import Row, in_turn, row
from bench.pipeline import post_all
from clinic.embedded_db import free_port

WARM_UP, BOOKINGS = 20, 100
SERVICES = ("api", "booking-worker", "notification-worker")
COUNTED = (*SERVICES, "database")
PATIENCE = 900
"""Seconds to wait for anything under valgrind: a process to start, the bookings to end."""


def callgrind() -> tuple[str, ...]:
    """The command that runs a program under callgrind (valgrind installed if missing)."""
    if not shutil.which("valgrind"):
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "valgrind"], check=True, capture_output=True
        )
    # The counters are read while the processes run: the file written at exit is not needed.
    return ("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null")


def _control(*args: str) -> str:
    return subprocess.run(
        ["callgrind_control", *args], check=True, capture_output=True, text=True, timeout=300
    ).stdout


def _instructions(pid: int) -> int:
    """What the process executed since its counters were zeroed, in all its threads."""
    report = _control("-e", "Ir", str(pid))
    # One line a thread: "Th 1  1,234" (and "Th10  1,234" from the tenth on).
    return sum(
        int(n.replace(",", "")) for n in re.findall(r"^\s*Th\s*\d+\s+([\d,]+)", report, re.M)
    )


def _settle(clinic: Clinic, emails: int) -> None:
    """Wait until ``emails`` emails have gone out and no queue holds a message."""
    deadline = time.monotonic() + PATIENCE
    while clinic.emails_received() < emails or _queued(clinic):
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"after {PATIENCE} s, {clinic.emails_received()} of {emails} emails sent and "
                f"{_queued(clinic)} messages still queued"
            )
        time.sleep(0.5)


def _queued(clinic: Clinic) -> int:
    """The messages in the run's queues, ready or being handled."""
    listed = rabbitmqctl("list_queues", "-p", clinic.vhost, "messages")
    return sum(int(count) for count in listed.split() if count.isdigit())


def count_clinic(workdir: Path, env: dict[str, str], wrapper: tuple[str, ...]) -> dict[str, float]:
    """Millions of instructions per booking, by process, at zero delay; ``env`` runs a
    baseline's source instead of this one."""
    zero_delay = {"CLINIC_CONFIRM_DELAY_MIN": "0", "CLINIC_CONFIRM_DELAY_MAX": "0", **env}
    with Clinic(workdir, env=zero_delay, wrapper=wrapper) as clinic:
        for name in SERVICES:
            clinic.start(name)
        clinic.wait_until_ready(PATIENCE)
        clinic.wait_for_workers(PATIENCE)
        asyncio.run(post_all(clinic.base_url, WARM_UP, 1))
        _settle(clinic, WARM_UP)
        pids = {
            name: service.process.pid
            for name, service in clinic.services.items()
            if service.process
        }
        if clinic.database_pid is not None:
            pids["database"] = clinic.database_pid
        sent = clinic.emails_received()
        for pid in pids.values():
            _control("--zero", str(pid))
        asyncio.run(post_all(clinic.base_url, BOOKINGS, 1, first_number=WARM_UP))
        _settle(clinic, sent + BOOKINGS)
        counted = {name: _instructions(pid) / BOOKINGS / 1e6 for name, pid in pids.items()}
    print(f"instructions run ({'baseline' if env else 'clinic'}): millions per booking", counted)
    return counted


def count_bare(workdir: Path, wrapper: tuple[str, ...]) -> float:
    """Millions of instructions per request of the bare FastAPI app, counted the same way."""
    port = free_port()
    command = f"uvicorn bench.bare_app:app --host 127.0.0.1 --port {port} --log-level warning"
    bare = Service(command, workdir / "bare-counted.log", wrapper=wrapper).start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, PATIENCE, path="/openapi.json")  # it has no /ready
        asyncio.run(post_all(url, WARM_UP, 1))
        assert bare.process is not None
        _control("--zero", str(bare.process.pid))
        asyncio.run(post_all(url, BOOKINGS, 1, first_number=WARM_UP))
        return _instructions(bare.process.pid) / BOOKINGS / 1e6
    finally:
        bare.terminate()


def instruction_rows(workdir: Path, runs: int, baseline: dict[str, str] | None) -> list[Row]:
    wrapper = callgrind()
    ours, theirs = in_turn(runs, baseline, lambda env: count_clinic(workdir, env, wrapper))
    bare = count_bare(workdir, wrapper)
    print(f"instructions of the bare app: {bare:.2f} millions per request", flush=True)

    def figures(results: list[dict[str, float]]) -> dict[str, float]:
        each = {name: median([r.get(name, 0.0) for r in results]) for name in COUNTED}
        return {**each, "total": sum(each.values()), "api per bare": each["api"] / bare}

    now = figures(ours)
    before = figures(theirs) if theirs else None
    title = f"M instructions per booking ({BOOKINGS} one at a time, zero delay), all counted"
    return [
        row(title, now, before, "total", "{:.1f}", "<= half the baseline's"),
        *(row(f"    {name}", now, before, name, "{:.2f}") for name in COUNTED),
        row("  API per POST /book, x the bare app's", now, before, "api per bare", "{:.2f}"),
    ]
