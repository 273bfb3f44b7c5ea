"""End to end: the real uvicorn and faststream processes, as deployed."""

import asyncio
import json
import re
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import aio_pika
import httpx
import pytest

from clinic.clock import utcnow
from clinic.embedded_db import free_port
from clinic.messages import BookingStatus, RejectionCode
from tests.conftest import vhost_rabbitmqctl
from tests.processes import compose_commands, running, wait_for_status, wait_until_up
from tests.stack import Stack, log_count, wait_until_terminal

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("rabbit_vhost", "clean_db")]


def book(base_url: str, minutes_ahead: int) -> str:
    date = (utcnow() + timedelta(days=20, minutes=30 * minutes_ahead)).strftime(
        "%Y-%m-%dT%H:%M:00Z"
    )
    response = httpx.post(
        f"{base_url}/book",
        json={"patientName": "Juan Pérez", "patientEmail": "juan@example.com", "date": date},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    booking_id: str = response.json()["id"]
    return booking_id


def test_the_compose_services_commands_book_confirm_and_email(tmp_path: Path) -> None:
    commands = compose_commands()
    assert set(commands) == {"api", "booking-worker", "notification-worker"}
    port = free_port()
    # Same command lines as the containers, on a free local port instead of 3000.
    api_command = commands["api"].replace("--port 3000", f"--port {port}")
    api_command = api_command.replace("--host 0.0.0.0", "--host 127.0.0.1")
    base_url = f"http://127.0.0.1:{port}"
    with (
        running(api_command, tmp_path / "api.log") as api_log,
        running(commands["booking-worker"], tmp_path / "booking.log") as booking_log,
        running(commands["notification-worker"], tmp_path / "email.log") as email_log,
    ):
        wait_until_up(base_url)
        booking_id = book(base_url, 0)
        body = wait_for_status(base_url, booking_id)
        assert body["status"] == "confirmed"
        # A staff search by address: the query string reaches uvicorn's access log.
        found = httpx.get(
            f"{base_url}/bookings",
            params={"patientEmail": "juan@example.com"},
            headers={"Authorization": "Bearer reception-token-0123456789abcdefghijklmnop"},
            timeout=10,
        )
        assert [b["id"] for b in found.json()["bookings"]] == [booking_id]
        deadline = time.monotonic() + 15
        while booking_id not in email_log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)

    emails = email_log.read_text()
    sent = rf"\[{booking_id}\] email to j\*\*\*@example\.com: Su cita está confirmada"
    assert re.search(sent, emails)
    assert re.search(r'"GET /bookings\?patientEmail=j\*\*\*@example\.com', api_log.read_text())
    for log in (api_log, booking_log, email_log):
        assert "juan@example.com" not in log.read_text(), log.name
        assert "juan%40example.com" not in log.read_text(), log.name
        assert "Juan Pérez" not in log.read_text(), log.name
        # One booking followed across the three processes by its id (the correlation id).
        assert f"[{booking_id}]" in log.read_text(), log.name


def test_one_command_runs_both_handlers_in_several_worker_processes(tmp_path: Path) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    # A second of confirmation holds each process's prefetch, so the rest goes to the other.
    slow = {"CLINIC_CONFIRM_DELAY_MIN": "1", "CLINIC_CONFIRM_DELAY_MAX": "1"}
    with (
        running(f"uvicorn clinic.api:app --port {port}", tmp_path / "api.log") as api_log,
        running(
            "faststream run clinic.handlers:app --workers 2", tmp_path / "workers.log", slow
        ) as workers_log,
    ):
        wait_until_up(base_url)
        ids = [book(base_url, slot) for slot in range(8)]
        statuses = {wait_for_status(base_url, i)["status"] for i in ids}
        assert statuses == {"confirmed"}
        deadline = time.monotonic() + 15
        while workers_log.read_text().count("email to") < len(ids):
            assert time.monotonic() < deadline, workers_log.read_text()
            time.sleep(0.1)

    log = workers_log.read_text()
    children = set(re.findall(r"Started child process (?:\d+ )?\[(\d+)\]", log))
    assert len(children) >= 2, log
    assert log.count("email to") == len(ids)
    # Each line names its process: both decided bookings, not just one of them.
    decided = r" (\d+) INFO clinic\.booking \[[^\]]+\] booking \S+ confirmed"
    deciders = set(re.findall(decided, log))
    assert deciders <= children, log
    assert len(deciders) == 2, log
    # Every line, uvicorn's and FastStream's (the parent's too) in the clinic's format.
    assert_clinic_format(api_log, ["Started server process", '"POST /book HTTP/1.1" 202'])
    assert_clinic_format(workers_log, ["Started parent process", "Started child process"])


TEXT_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \d+ [A-Z]+ \S+ \[[^\]\s]+\] .*")
"""``time pid LEVEL logger [booking] text``."""


def assert_clinic_format(log: Path, expected: list[str]) -> None:
    """Every line of ``log`` is a clinic text line, and the ``expected`` texts are among them."""
    lines = log.read_text().splitlines()
    assert lines, log.name
    strangers = [line for line in lines if not TEXT_LINE.fullmatch(line)]
    assert not strangers, f"{log.name}: not in the clinic's format: {strangers}"
    for text in expected:
        assert any(text in line for line in lines), f"{log.name}: no {text!r}"


def test_every_line_is_one_json_object_with_clinic_log_format_json(tmp_path: Path) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    as_json = {"CLINIC_LOG_FORMAT": "json"}
    with (
        running(f"uvicorn clinic.api:app --port {port}", tmp_path / "api.log", as_json) as api,
        running(
            "faststream run clinic.handlers:app --workers 2 --log-level debug",
            tmp_path / "workers.log",
            as_json,
        ) as workers,
    ):
        wait_until_up(base_url)
        booking_id = book(base_url, 0)
        assert wait_for_status(base_url, booking_id)["status"] == "confirmed"
        deadline = time.monotonic() + 15
        while "email to" not in workers.read_text():
            assert time.monotonic() < deadline, workers.read_text()
            time.sleep(0.1)

    for log, expected in (
        (api, ["Started server process", '"POST /book HTTP/1.1" 202']),
        # --log-level debug: FastStream's per-message lines too, with their queue.
        (workers, ["Started parent process", "waiting for messages", "Received"]),
    ):
        lines = [json.loads(line) for line in log.read_text().splitlines()]
        assert {"time", "level", "logger", "pid", "booking_id", "message"} <= set(lines[0])
        for text in expected:
            assert any(text in line["message"] for line in lines), f"{log.name}: no {text!r}"
        assert booking_id in {line["booking_id"] for line in lines}, log.name
    received = [line for line in lines if line["message"] == "Received"]
    assert {line.get("queue") for line in received} >= {"booking_requests"}, received


async def test_fifty_patients_racing_for_one_slot_get_one_confirmation(
    tmp_path: Path, rabbit: aio_pika.abc.AbstractChannel
) -> None:
    stack = Stack(tmp_path, vhost_rabbitmqctl)
    try:
        stack.api()
        workers = [stack.booking_worker(f"booking-{n}") for n in range(3)]
        await stack.wait_until_ready()
        body = {
            "patientName": "José Ñúñez",
            "patientEmail": "jose@example.com",
            "date": stack.next_date(),
            "doctorId": "dr-test",
        }
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as client:
            answers = await asyncio.gather(*(client.post("/book", json=body) for _ in range(50)))
        assert [a.status_code for a in answers] == [202] * 50
        bookings = await wait_until_terminal([a.json()["id"] for a in answers], within=60)
    finally:
        stack.stop_all()

    outcomes = Counter((b.status, b.reason_code) for b in bookings)
    assert outcomes == {
        (BookingStatus.CONFIRMED, None): 1,
        (BookingStatus.REJECTED, RejectionCode.SLOT_TAKEN): 49,
    }
    deciders = [w for w in workers if log_count(w.log, "INFO clinic.booking")]
    assert len(deciders) >= 2, "one worker process decided them all: no race was tested"
