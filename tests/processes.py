"""Running the real service commands as processes, for the end-to-end tests."""

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import yaml

from clinic.embedded_db import free_port

BIN = Path(sys.executable).parent


ROOT = Path(__file__).resolve().parent.parent


def compose_commands() -> dict[str, str]:
    """The command line of each service the compose file builds from this repository."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    return {name: spec["command"] for name, spec in services.items() if "build" in spec}


class Service:
    """One real process of ours (and its children), which a test can kill and start again.

    Its output is appended to ``log`` across restarts. A worker serves its
    /health, /ready and /metrics on a free port of its own (``http_port``, plus the
    child's number under ``--workers``), so processes of one test never collide.
    """

    def __init__(
        self,
        command: str,
        log: Path,
        env: dict[str, str] | None = None,
        wrapper: Sequence[str] = (),
    ) -> None:
        program, *self.args = shlex.split(command)
        self.program = str(BIN / program)
        # What the program runs under, if anything (a profiler, in the benchmarks).
        self.wrapper = list(wrapper)
        self.log = log
        self.env = {**os.environ, "CLINIC_WORKER_HTTP_PORT": str(free_port()), **(env or {})}
        self.http_port = int(self.env["CLINIC_WORKER_HTTP_PORT"])
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "Service":
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [*self.wrapper, self.program, *self.args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=ROOT,
                start_new_session=True,  # its own process group: signals reach its children
            )
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the process and its children: no cleanup, no acks, no goodbyes."""
        self._signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait()

    def terminate(self, timeout: float = 20.0) -> float:
        """SIGTERM, then wait for a graceful exit; the seconds it took (killed if too slow)."""
        started = time.monotonic()
        self._signal(signal.SIGTERM)
        if self.process is not None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return time.monotonic() - started

    def _signal(self, signum: signal.Signals) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)


@contextlib.contextmanager
def running(command: str, log: Path, env: dict[str, str] | None = None) -> Iterator[Path]:
    """Run ``command`` (its program taken from this interpreter's bin) until the block ends."""
    service = Service(command, log, env).start()
    try:
        yield log
    finally:
        service.terminate()


def wait_until_up(base_url: str, timeout: float = 40.0, path: str = "/ready") -> None:
    """Wait for the API's /ready (or another app's ``path``) to answer 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}{path}", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"{base_url} did not become ready within {timeout}s")


def wait_for_status(base_url: str, booking_id: str, timeout: float = 30.0) -> dict[str, object]:
    """Poll GET /booking/{id} until it leaves pending; the last body."""
    deadline = time.monotonic() + timeout
    body: dict[str, object] = {}
    while time.monotonic() < deadline:
        body = httpx.get(f"{base_url}/booking/{booking_id}", timeout=5).json()
        if body.get("status") != "pending":
            return body
        time.sleep(0.1)
    raise AssertionError(f"booking {booking_id} still pending after {timeout}s: {body}")
