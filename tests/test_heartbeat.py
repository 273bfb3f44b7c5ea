"""The workers' heartbeat, which the compose file's worker healthchecks read."""

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from clinic.handlers import heartbeat
from tests.processes import ROOT, compose_commands, running


class Broker:
    """A broker connection whose state the test sets."""

    def __init__(self, up: bool) -> None:
        self.up = up

    async def ping(self, wait: float | None, /) -> bool:
        return self.up


async def beat_for(seconds: float, *brokers: Broker) -> None:
    """Run the heartbeat, beating every 10 ms, for ``seconds``."""
    task = asyncio.create_task(heartbeat.beat(brokers, interval=0.01))
    await asyncio.sleep(seconds)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_a_connected_worker_keeps_the_file_fresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alive = tmp_path / "alive"
    monkeypatch.setenv("CLINIC_HEARTBEAT_FILE", str(alive))
    await beat_for(0.1, Broker(up=True), Broker(up=True))
    assert heartbeat.is_fresh(alive, max_age=1)


async def test_a_disconnected_worker_leaves_no_heartbeat_not_even_an_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alive = tmp_path / "alive"
    alive.touch()  # left by the container's previous run
    monkeypatch.setenv("CLINIC_HEARTBEAT_FILE", str(alive))
    await beat_for(0.1, Broker(up=True), Broker(up=False))
    assert not alive.exists()


def test_the_check_passes_only_on_a_recent_heartbeat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alive = tmp_path / "alive"
    monkeypatch.setenv("CLINIC_HEARTBEAT_FILE", str(alive))
    assert heartbeat.main(["check", "--max-age", "30"]) == 1
    alive.touch()
    assert heartbeat.main(["check", "--max-age", "30"]) == 0
    old = time.time() - 60
    os.utime(alive, (old, old))
    assert heartbeat.main(["check", "--max-age", "30"]) == 1
    assert heartbeat.main(["check", "--max-age", "90"]) == 0


def healthcheck(service: str) -> list[str]:
    """The compose healthcheck's command of ``service``, run with this interpreter."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    kind, program, *args = services[service]["healthcheck"]["test"]
    assert (kind, program) == ("CMD", "python")
    return [sys.executable, *args]


def healthy(check: list[str], env: dict[str, str]) -> bool:
    result = subprocess.run(
        check, env={**os.environ, **env}, capture_output=True, text=True, check=False, timeout=30
    )
    return result.returncode == 0


@pytest.mark.e2e
@pytest.mark.usefixtures("rabbit_vhost", "clean_db")
@pytest.mark.parametrize("worker", ["booking-worker", "notification-worker"])
def test_a_worker_process_turns_healthy_once_connected_and_keeps_beating(
    worker: str, tmp_path: Path
) -> None:
    alive = tmp_path / "alive"
    env = {"CLINIC_HEARTBEAT_FILE": str(alive)}
    check = healthcheck(worker)
    assert not healthy(check, env)

    with running(compose_commands()[worker], tmp_path / "worker.log", env):
        deadline = time.monotonic() + 40
        while not healthy(check, env):
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
            time.sleep(0.5)
        first = alive.stat().st_mtime
        # Every few seconds, not once: a worker that hangs later turns unhealthy.
        deadline = time.monotonic() + 3 * heartbeat.INTERVAL
        while alive.stat().st_mtime == first:
            assert time.monotonic() < deadline, "the worker beat only once"
            time.sleep(0.5)

    # Stopped, the worker beats no more: the file only ages.
    time.sleep(1.5)
    assert not healthy([*check[:-1], "1"], env)
