"""``POST /book`` under wrk, checked for loss, beside a bare FastAPI endpoint.

Per run: the API as the compose file runs it (no workers, so every published
request stays queued), a 3 s warm-up, then 64 connections for 15 s. Then every
accepted booking must be stored and enqueued. The same load on a FastAPI app
that only validates the same body (``bench.bare_app``) gives the ratio.
"""

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from pymongo import MongoClient
from tests.processes import Service, compose_commands

from bench.environment import Clinic, CpuMeter

WRK_SCRIPT = Path(__file__).with_name("post_book.lua")
CONNECTIONS, DURATION, WARMUP = 64, 15, 3


@dataclass
class Load:
    """What wrk saw."""

    requests: int
    per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int


def ensure_wrk() -> str:
    """The wrk binary, installed from Debian's packages if missing."""
    if found := shutil.which("wrk"):
        return found
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, capture_output=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed and could not be installed")
    return found


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if found is None:
        raise ValueError(f"wrk printed a latency of {text!r}")
    value, unit = found.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(url: str, seconds: int) -> Load:
    """Load ``url`` with POST /book bodies for ``seconds``."""
    out = subprocess.run(
        [ensure_wrk(), "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency",
         "-s", str(WRK_SCRIPT), url],
        check=True, capture_output=True, text=True, timeout=seconds + 60,
    ).stdout  # fmt: skip
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = (int(non_2xx[1]) if non_2xx else 0) + (sum(map(int, errors.groups())) if errors else 0)
    return Load(
        requests=int(re.search(r"(\d+) requests in", out)[1]),  # type: ignore[index]
        per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),  # type: ignore[index]
        p50_ms=_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M)[1]),  # type: ignore[index]
        p99_ms=_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M)[1]),  # type: ignore[index]
        non_2xx=failed,
    )


@dataclass
class ApiRun:
    """One run of the API under load: what wrk saw, what was kept, what it cost."""

    load: Load
    accepted: int
    stored: int
    enqueued: int
    peak_rss_mb: float
    cpu_ms: dict[str, float]
    """CPU milliseconds per accepted request, by process (API, database, broker, wrk)."""

    @property
    def lost(self) -> int:
        # wrk does not count answers still in flight when it stops, so stored >= accepted.
        return max(0, self.accepted - self.stored) + max(0, self.stored - self.enqueued)


def measure_ours(clinic: Clinic, processes: int = 1) -> ApiRun:
    """Load the API alone (``processes`` uvicorn processes); check every accepted booking
    was stored and enqueued."""
    api = clinic.start("api", api_command(processes))
    clinic.wait_until_ready()
    warm = wrk(f"{clinic.base_url}/book", WARMUP)
    meter = clinic.cpu_meter().start()
    load = wrk(f"{clinic.base_url}/book", DURATION)
    accepted = warm.requests - warm.non_2xx + load.requests - load.non_2xx
    time.sleep(2)  # requests still in flight when wrk stopped finish storing and publishing
    used = meter.stop()
    with MongoClient(clinic.mongo_url) as client:
        stored = client[clinic.db_name]["bookings"].count_documents({})
    deadline = time.monotonic() + 30  # the last publishes finish after their answers
    while (enqueued := clinic.queue_depth("booking_requests")) < stored:
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if enqueued < stored:  # say why: the API's warnings (the relay runs in the workers)
        warnings = [line for line in api.log.read_text().splitlines() if " WARNING " in line]
        print(
            f"{stored - enqueued} stored, not enqueued; the API warned:", *warnings[-5:], sep="\n  "
        )
    peak = clinic.rss(peak=True)["api"]
    assert api.running
    served = max(load.requests - load.non_2xx, 1)
    cpu_ms = {name: seconds * 1000 / served for name, seconds in used.items()}
    return ApiRun(load, accepted, stored, enqueued, peak, cpu_ms)


def api_command(processes: int) -> str:
    """The compose file's API command line, run as ``processes`` processes."""
    command = compose_commands()["api"]
    return command if processes == 1 else f"{command} --workers {processes}"


def measure_bare(workdir: Path, port: int) -> tuple[Load, float]:
    """The same load on an app that only validates the body; and its CPU ms per request."""
    bare = Service(
        f"uvicorn bench.bare_app:app --host 127.0.0.1 --port {port} --log-level warning",
        workdir / "bare.log",
    ).start()
    try:
        time.sleep(2)
        wrk(f"http://127.0.0.1:{port}/book", WARMUP)
        assert bare.process is not None
        meter = CpuMeter({"bare": bare.process.pid}).start()
        load = wrk(f"http://127.0.0.1:{port}/book", DURATION)
        used = meter.stop()["bare"]
        return load, used * 1000 / max(load.requests, 1)
    finally:
        bare.terminate()
