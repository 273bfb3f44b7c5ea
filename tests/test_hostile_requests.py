"""Requests an attacker would send, against the real uvicorn process: none stalls the others."""

import asyncio
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from clinic.clock import utcnow
from clinic.embedded_db import free_port
from tests.processes import running, wait_until_up

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("rabbit_vhost", "clean_db")]

QUICK = 0.5
"""Seconds a normal request may take while a hostile one is being handled."""


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A real API process, with a short body timeout; its URL and its log file."""
    port = free_port()
    log = tmp_path_factory.mktemp("api") / "api.log"
    with running(f"uvicorn clinic.api:app --port {port}", log, {"CLINIC_BODY_TIMEOUT": "1"}):
        base_url = f"http://127.0.0.1:{port}"
        wait_until_up(base_url)
        yield base_url, log


async def _answers_quickly(client: httpx.AsyncClient) -> float:
    started = time.monotonic()
    response = await client.get("/health")
    assert response.status_code == 200
    return time.monotonic() - started


@pytest.mark.parametrize(
    ("what", "request_args", "status"),
    [
        # No "@" anywhere: the worst case of a backtracking email pattern.
        ("a 48 KiB query string", {"url": "/health?q=" + "a" * 48 * 1024}, 414),
        ("a 4 MB header", {"url": "/health", "headers": {"X-Big": "a" * 4_000_000}}, 431),
        (
            "many addresses in the query",
            {"url": "/health?q=" + "a@b." * 1500},
            200,
        ),
    ],
)
async def test_a_huge_request_is_refused_and_others_answer_at_once(
    api: tuple[str, Path], what: str, request_args: dict[str, object], status: int
) -> None:
    base_url, log = api
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        hostile = [asyncio.create_task(client.get(**request_args)) for _ in range(4)]  # type: ignore[arg-type]
        for response in await asyncio.gather(*hostile):
            assert response.status_code == status, what
        # The server logs each hostile request right after answering it.
        assert await _answers_quickly(client) < QUICK, what
    longest = max(len(line) for line in log.read_text().splitlines())
    assert longest < 3000, f"{what}: a log line of {longest} characters"


def _send_slowly(base_url: str, stop: float, connected: threading.Event) -> None:
    """A client trickling a request's headers, one byte at a time."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as connection:
        connected.set()
        for byte in b"GET /health HTTP/1.1\r\nHost: clinic\r\nX-Slow: " + b"a" * 1000:
            if time.monotonic() > stop:
                return
            connection.send(bytes([byte]))
            time.sleep(0.01)


async def test_slow_clients_do_not_hold_up_the_others(api: tuple[str, Path]) -> None:
    base_url, _ = api
    stop = time.monotonic() + 3
    connected = [threading.Event() for _ in range(20)]
    trickling = asyncio.gather(
        *(asyncio.to_thread(_send_slowly, base_url, stop, event) for event in connected)
    )
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            for event in connected:
                assert await asyncio.to_thread(event.wait, 5)
            timings = [await _answers_quickly(client) for _ in range(10)]
    finally:
        await trickling
    assert max(timings) < QUICK, timings


async def test_a_body_that_never_finishes_is_408_and_frees_the_connection(
    api: tuple[str, Path],
) -> None:
    base_url, _ = api
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            b"POST /book HTTP/1.1\r\nHost: clinic\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"patientName": '
        )
        await writer.drain()
        started = time.monotonic()
        # The head and the body of the answer may arrive in separate reads.
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        waited = time.monotonic() - started
        length = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
        assert length is not None, head
        answer = head + await asyncio.wait_for(reader.readexactly(int(length[1])), timeout=5)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"did not arrive in time" in answer
    assert waited < 5, waited


async def test_manage_tokens_never_reach_the_log(api: tuple[str, Path]) -> None:
    base_url, log = api
    when = (utcnow() + timedelta(days=12)).strftime("%Y-%m-%dT%H:%M:00Z")
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        created = await client.post(
            "/book",
            json={"patientName": "Juan Pérez", "patientEmail": "juan@example.com", "date": when},
        )
        assert created.status_code == 202, created.text
        booking_id, token = created.json()["id"], created.json()["manageToken"]
        opened = await client.get(
            f"/booking/{booking_id}", headers={"Authorization": f"Bearer {token}"}
        )
        assert opened.status_code == 200
        # The access log line of that request is written once it is answered.
        await _answers_quickly(client)
    text = log.read_text()
    assert f"GET /booking/{booking_id}" in text
    assert token not in text
    assert "juan@example.com" not in text
    assert "Juan Pérez" not in text
