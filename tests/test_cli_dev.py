"""End to end: ``clinic dev`` runs the whole system, books an appointment, and stops cleanly."""

import email
import email.policy
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from clinic.embedded_db import EPHEMERAL_RANGE, PORTS_BELOW, free_port
from tests.conftest import unavailable

CLINIC = Path(sys.executable).parent / "clinic"
ROOT = Path(__file__).resolve().parent.parent


def _wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Call ``check`` until it returns True."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 0.5):
            return True
    except OSError:
        return False


def _nothing_listens() -> str:
    """A broker URL at which nothing answers."""
    return f"amqp://guest:guest@127.0.0.1:{free_port()}/"


@pytest.mark.e2e
@pytest.mark.parametrize("broker", ["the machine's", "its own"])
def test_clinic_dev_books_and_stops(
    broker: str,
    own_vhost: tuple[str, Callable[..., str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if broker == "its own":
        if shutil.which("rabbitmq-server") is None:
            unavailable("needs rabbitmq-server installed, to start a node of its own")
        # A newcomer's machine: no broker answers, so `clinic dev` starts one.
        monkeypatch.setenv("CLINIC_RABBIT_URL", _nothing_listens())
    else:
        # An empty vhost: what earlier tests left in the session's queues is not its to take.
        monkeypatch.setenv("CLINIC_RABBIT_URL", own_vhost[0])
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    data_dir = tmp_path / "data"
    # Left to `clinic dev`: the database, the doctors (the example file, from the
    # checkout it runs in) and a staff token, which it prints.
    unset = {"CLINIC_MONGO_URL", "CLINIC_DOCTORS_FILE", "CLINIC_STAFF_TOKENS"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env["CLINIC_DEV_DATA_DIR"] = str(data_dir)
    shutil.copy(ROOT / "doctors.example.json", tmp_path)
    log_path = tmp_path / "clinic-dev.log"

    with log_path.open("wb") as log, httpx.Client(base_url=api, timeout=5) as http:
        process = subprocess.Popen(
            [str(CLINIC), "dev", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:

            def api_up() -> bool:
                assert process.poll() is None, "clinic dev exited early"
                try:
                    return http.get("/health").status_code == 200
                except httpx.TransportError:
                    return False

            _wait_until(api_up, 40, "GET /health")

            banner = log_path.read_text()
            example = re.search(r"-d '(\{.*\})'", banner)
            token = re.search(r"Authorization: Bearer (\S+)\"", banner)
            assert example, banner
            assert token, banner
            booked = http.post("/book", json=json.loads(example[1]))
            listed = http.get("/bookings", headers={"Authorization": f"Bearer {token[1]}"})
            assert listed.status_code == 200, listed.text
            assert booked.status_code == 202, booked.text
            booking_id = booked.json()["id"]

            def confirmed() -> bool:
                status = http.get(f"/booking/{booking_id}").json()["status"]
                assert status in {"pending", "confirmed"}, status
                return bool(status == "confirmed")

            doctors = http.get("/doctors").json()["doctors"]
            assert "dra-garcia" in [d["id"] for d in doctors], "the example doctors are missing"

            _wait_until(confirmed, 30, f"booking {booking_id} to be confirmed")

            def emailed() -> bool:
                mails = [
                    email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                    for path in (data_dir / "mail").glob("*.eml")
                ]
                # In Spanish, the bookings' default language.
                return any(str(m["Subject"]).startswith("Su cita está confirmada") for m in mails)

            # Over SMTP, to the inbox it runs and names in its banner.
            _wait_until(emailed, 30, "the confirmation email in clinic dev's inbox")
            assert f"email:    kept in {data_dir / 'mail'}" in log_path.read_text()
            assert any(path.is_file() for path in data_dir.rglob("*")), "no data kept locally"
            output = log_path.read_text()
            db_port = re.search(r"mongodb://127\.0\.0\.1:(\d+)", output)
            assert db_port, "clinic dev did not say which database it started"
            own_broker = re.search(r"private RabbitMQ node at amqp://\S+@[\d.]+:(\d+)", output)
            assert bool(own_broker) == (broker == "its own"), output
            # A first run that works says nothing alarming: no warning, no traceback.
            assert " WARNING " not in output, output
            assert "Traceback" not in output, output

            process.send_signal(signal.SIGTERM)
            assert process.wait(30) == 0
            assert not _accepts_connections(port), "the API outlived clinic dev"
            assert not _accepts_connections(int(db_port[1])), "the database outlived clinic dev"
            if own_broker:
                assert not _accepts_connections(int(own_broker[1])), "the broker outlived it"
        except BaseException:
            print(log_path.read_text(errors="replace"))
            raise
        finally:
            _kill_group(process)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Stop whatever is left of the process group ``clinic dev`` leads."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            return
        try:
            process.wait(20)
            return
        except subprocess.TimeoutExpired:
            continue


def test_clinic_dev_without_a_broker_says_how_to_get_one(tmp_path: Path) -> None:
    # No broker answers, and none is installed: only this Python's scripts on the PATH.
    env = {**os.environ, "CLINIC_RABBIT_URL": _nothing_listens(), "PATH": str(CLINIC.parent)}
    env.pop("CLINIC_MONGO_URL", None)
    env["CLINIC_DEV_DATA_DIR"] = str(tmp_path / "data")
    done = subprocess.run(
        [str(CLINIC), "dev", "--port", str(free_port())],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("clinic dev: no broker answers at amqp://guest:***@"), lines
    assert "install RabbitMQ" in lines[0]
    assert "CLINIC_RABBIT_URL" in lines[0]
    # Nothing was started for it: no database files either.
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").rglob("*"))


def test_a_free_port_is_one_no_outgoing_connection_can_take_first() -> None:
    # A port the kernel hands out for binding port 0 is one it also gives outgoing
    # connections: a client's connection could take it before the server binds it.
    low = int(EPHEMERAL_RANGE.read_text().split()[0])
    ports = [free_port() for _ in range(50)]

    assert all(low - PORTS_BELOW <= port < low for port in ports), ports
    assert len(set(ports)) == len(ports), "a port was handed out twice"
    with socket.socket() as server:
        server.bind(("127.0.0.1", ports[-1]))  # nobody else listens there
