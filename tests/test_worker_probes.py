"""The workers' own HTTP: /health, /ready (the compose healthcheck) and /metrics."""

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from clinic.embedded_db import free_port
from tests.conftest import IN_CI
from tests.private_broker import PrivateRabbit, available
from tests.processes import ROOT, Service, compose_commands


def healthcheck(service: str, port: int) -> list[str]:
    """The compose healthcheck's command of ``service``, run with this interpreter on ``port``."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    kind, program, *args = services[service]["healthcheck"]["test"]
    assert (kind, program) == ("CMD", "python")
    assert "127.0.0.1:8001/ready" in args[-1]
    return [sys.executable, *args[:-1], args[-1].replace(":8001/", f":{port}/")]


def healthy(check: list[str]) -> bool:
    """Whether the healthcheck command passes now."""
    return subprocess.run(check, capture_output=True, check=False, timeout=30).returncode == 0


def wait_for_ready(port: int, status: int, log: Path, within: float = 40.0) -> None:
    """Poll the worker's /ready until it answers ``status``."""
    deadline = time.monotonic() + within
    answered = None
    while answered != status:
        assert time.monotonic() < deadline, f"/ready answered {answered}: {log.read_text()}"
        try:
            answered = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5).status_code
        except httpx.HTTPError:
            answered = None
        time.sleep(0.2)


@pytest.mark.e2e
@pytest.mark.usefixtures("rabbit_vhost", "clean_db")
@pytest.mark.parametrize("worker", ["booking-worker", "notification-worker"])
def test_a_worker_turns_healthy_once_connected_and_serves_its_metrics(
    worker: str, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    service = Service(compose_commands()[worker], log)
    check = healthcheck(worker, service.http_port)
    assert not healthy(check)
    service.start()
    try:
        deadline = time.monotonic() + 40
        while not healthy(check):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        base = f"http://127.0.0.1:{service.http_port}"
        assert httpx.get(f"{base}/health", timeout=5).json() == {"status": "ok"}
        assert httpx.get(f"{base}/ready", timeout=5).json() == {
            "status": "ready",
            "broker": "up",
            "database": "up",
        }
        metrics = httpx.get(f"{base}/metrics", timeout=5)
        names = {family.name for family in text_string_to_metric_families(metrics.text)}
        assert {"clinic_bookings", "clinic_emails", "clinic_messages_parked"} <= names
    finally:
        service.terminate()
    assert not healthy(check)


def two_free_ports() -> int:
    """A port that is free, and so is the next one."""
    while True:
        port = free_port()
        try:
            socket.create_server(("127.0.0.1", port + 1)).close()
        except OSError:
            continue
        return port


@pytest.mark.e2e
@pytest.mark.usefixtures("rabbit_vhost", "clean_db")
def test_each_child_of_workers_n_serves_on_the_port_plus_its_number(tmp_path: Path) -> None:
    port = two_free_ports()
    log = tmp_path / "workers.log"
    env = {"CLINIC_WORKER_HTTP_PORT": str(port)}
    service = Service("faststream run clinic.handlers:app --workers 2", log, env).start()
    try:
        for child in (port, port + 1):
            wait_for_ready(child, 200, log)
    finally:
        service.terminate()
    assert "CLINIC_WORKER_HTTP_PORT" not in log.read_text()  # no child found its port taken


def test_a_taken_port_costs_the_worker_its_http_not_its_work() -> None:
    """One error line naming the setting; the worker's lifespan goes on."""
    port = free_port()
    code = (
        "import asyncio, socket\n"
        "from clinic.handlers.probes import serving_probes\n"
        f"taken = socket.create_server(('127.0.0.1', {port}))\n"
        "async def main():\n"
        "    async with serving_probes([], None):\n"
        "        print('consuming')\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"CLINIC_WORKER_HTTP_PORT": str(port), "PATH": "/usr/bin:/bin"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "consuming"
    [line] = [line for line in result.stderr.splitlines() if "CLINIC_WORKER_HTTP_PORT" in line]
    assert f"127.0.0.1:{port}" in line
    assert "Traceback" not in result.stderr


@pytest.fixture
def own_broker() -> Iterator[PrivateRabbit]:
    """A broker node of the test's own, to stop and start again."""
    if not available():
        if IN_CI:
            pytest.fail("CI must run this test: RabbitMQ and root are needed for a private node")
        pytest.skip("needs RabbitMQ installed and root, to run a private broker node")
    node = PrivateRabbit()
    node.start()
    try:
        yield node
    finally:
        node.remove()


@pytest.mark.faults
@pytest.mark.usefixtures("clean_db")
def test_ready_answers_503_while_the_broker_is_down_and_200_once_it_is_back(
    own_broker: PrivateRabbit, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    env = {"CLINIC_RABBIT_URL": own_broker.url}
    service = Service(compose_commands()["notification-worker"], log, env).start()
    try:
        wait_for_ready(service.http_port, 200, log)
        own_broker.stop()
        wait_for_ready(service.http_port, 503, log, within=20)
        body = httpx.get(f"http://127.0.0.1:{service.http_port}/ready", timeout=10).json()
        assert body == {"status": "unavailable", "broker": "down", "database": "up"}
        # Still alive: an orchestrator restarts on /health, and reconnecting is the cure.
        assert httpx.get(f"http://127.0.0.1:{service.http_port}/health", timeout=5).is_success
        own_broker.start()
        wait_for_ready(service.http_port, 200, log, within=60)
    finally:
        service.terminate()
