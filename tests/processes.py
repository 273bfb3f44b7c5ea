"""Running the real service commands as processes, for the end-to-end tests."""

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


@contextlib.contextmanager
def running(command: str, log: Path, env: dict[str, str] | None = None) -> Iterator[Path]:
    """Run ``command`` (its program taken from this interpreter's bin) until the block ends."""
    program, *args = shlex.split(command)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / program), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    try:
        yield log
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_until_up(base_url: str, timeout: float = 40.0) -> None:
    """Wait for the API's /ready to answer 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/ready", timeout=2).status_code == 200:
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
