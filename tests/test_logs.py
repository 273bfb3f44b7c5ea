"""The log format: one handler for every line of a process, as text or as JSON, always masked."""

import asyncio
import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from clinic.logs import (
    JsonFormatter,
    MaskedFormatter,
    configure_logging,
    current_booking_id,
)

TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \d+ [A-Z]+ \S+ \[[^\]\s]+\] ")
"""``time pid LEVEL logger [booking] text``: the start of every text line."""


def record(
    message: str, *args: object, name: str = "clinic.test", **extra: object
) -> logging.LogRecord:
    made = logging.LogRecord(name, logging.INFO, __file__, 1, message, args or None, None)
    made.__dict__.update(extra)
    return made


def failed(message: str, exc: BaseException) -> logging.LogRecord:
    try:
        raise exc
    except type(exc):
        made = logging.LogRecord("clinic.test", logging.ERROR, __file__, 1, message, None, None)
        made.exc_info = sys.exc_info()
        return made


def test_a_json_line_is_one_object_with_the_fields_of_a_text_line() -> None:
    token = current_booking_id.set("b-123")
    try:
        line = JsonFormatter().format(record("booking %s confirmed", "b-123"))
    finally:
        current_booking_id.reset(token)
    parsed = json.loads(line)
    assert set(parsed) == {"time", "level", "logger", "pid", "booking_id", "message"}
    assert parsed["booking_id"] == "b-123"
    assert parsed["message"] == "booking b-123 confirmed"
    assert (parsed["level"], parsed["logger"]) == ("INFO", "clinic.test")
    assert isinstance(parsed["pid"], int)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", parsed["time"])


def test_a_line_about_no_booking_has_a_null_booking_id() -> None:
    assert json.loads(JsonFormatter().format(record("started")))["booking_id"] is None


def test_faststreams_message_context_is_kept_as_fields() -> None:
    context = {"queue": "booking_requests", "exchange": "", "message_id": "m-1"}
    parsed = json.loads(JsonFormatter().format(record("Received", **context)))
    assert parsed["queue"] == "booking_requests"
    assert parsed["message_id"] == "m-1"
    assert "exchange" not in parsed  # empty: the default exchange
    text = MaskedFormatter().format(record("Received", **context))
    assert text.endswith("Received (queue=booking_requests, message_id=m-1)")


def test_emails_and_names_are_masked_in_json_as_in_text() -> None:
    message = 'GET /bookings?patientEmail=juan%40example.com "to": juan@example.com'
    exc = ValueError("Juan Pérez <juan@example.com>")  # a library quoting its input
    for formatter in (JsonFormatter(), MaskedFormatter()):
        line = formatter.format(failed(message, exc))
        assert "juan@example.com" not in line
        assert "juan%40example.com" not in line.lower()
        assert "Juan Pérez" not in line
        assert "j***@example.com" in line
    parsed = json.loads(JsonFormatter().format(failed(message, exc)))
    assert parsed["exception"].endswith("ValueError")
    assert parsed["message"].endswith('"to": j***@example.com')


@pytest.mark.parametrize(
    "message",
    [
        '"}{"level": "CRITICAL", "x": "\\',
        "first line\nsecond line\r\n\x1b[31m\x00\u2028 jose\x1bjuan@example.com",
        "José " * 2000 + "juan@example.com",
    ],
    ids=["quotes", "control characters", "10 kB"],
)
def test_a_hostile_message_is_one_valid_json_line(message: str) -> None:
    line = JsonFormatter().format(record("%s", message))
    assert "\n" not in line
    assert "\r" not in line
    parsed = json.loads(line)
    assert parsed["level"] == "INFO"
    assert "juan@example.com" not in parsed["message"]
    assert len(parsed["message"]) < 2100  # cut to size, as text lines are


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """The root logger's handlers as they were before the test."""
    root = logging.getLogger()
    handlers = root.handlers[:]
    yield
    root.handlers[:] = handlers
    configure_logging()


@pytest.mark.usefixtures("logging_restored")
def test_every_logger_writes_through_one_handler_however_often_it_is_configured(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # What uvicorn's dictConfig and FastStream's import leave: handlers of their own.
    for name in ("uvicorn", "uvicorn.access", "faststream"):
        theirs = logging.getLogger(name)
        theirs.addHandler(logging.StreamHandler())
        theirs.propagate = False
    configure_logging("INFO", "text")
    configure_logging("INFO", "text")
    names = ["clinic.x", "uvicorn.error", "uvicorn.access", "faststream", "aio_pika"]
    for name in names:
        logging.getLogger(name).warning("line from %s", name)
    lines = capsys.readouterr().err.splitlines()
    assert [line.rsplit(" ", 1)[1] for line in lines] == names, lines
    assert all(TEXT_LINE.match(line) for line in lines), lines

    configure_logging("INFO", "json")
    logging.getLogger("faststream").warning("one more")
    [line] = capsys.readouterr().err.splitlines()
    assert json.loads(line)["logger"] == "faststream"


def test_an_exception_python_cannot_raise_is_one_json_line_too(tmp_path: Path) -> None:
    """A finaliser's error (aiormq's, say, at exit) would otherwise reach stderr as raw text."""
    script = tmp_path / "unraisable.py"
    script.write_text(
        "from clinic.logs import configure_logging\n"
        "configure_logging('INFO', 'json')\n"
        "class Dropped:\n"
        "    def __del__(self):\n"
        "        raise RuntimeError('failed while collected')\n"
        "Dropped()\n"
    )
    ran = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True
    )
    [line] = ran.stderr.splitlines()
    logged = json.loads(line)
    assert logged["level"] == "WARNING"
    assert "failed while collected" in logged["exception"]


@pytest.mark.usefixtures("logging_restored")
def test_a_message_cut_off_by_a_lost_connection_is_a_warning_and_a_failure_stays_an_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", "text")
    access = logging.getLogger("faststream.access.rabbit")
    context = {"queue": "booking_requests", "message_id": "b-1"}
    for exc in (asyncio.CancelledError("Server connection reset"), RuntimeError("a bug")):
        try:
            raise exc
        except BaseException as raised:  # noqa: BLE001 - as FastStream's log middleware
            access.error("%s: %s", type(raised).__name__, raised, exc_info=raised, extra=context)
    interrupted, failure, *traceback = capsys.readouterr().err.splitlines()

    assert " WARNING faststream.access.rabbit " in interrupted
    assert interrupted.endswith(
        "handling interrupted (CancelledError: Server connection reset): unacknowledged, "
        "so the broker delivers it again (queue=booking_requests, message_id=b-1)"
    )
    assert " ERROR faststream.access.rabbit " in failure
    assert traceback[0] == "Traceback (most recent call last):"
    assert traceback[-1] == "RuntimeError"  # its kind only: an error text may quote data
