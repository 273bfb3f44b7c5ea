"""The committed asyncapi.yaml is what the code generates."""

import os
import subprocess
from pathlib import Path

import yaml

from tests.processes import BIN

ROOT = Path(__file__).resolve().parent.parent


def test_committed_asyncapi_matches_the_code(tmp_path: Path) -> None:
    # Generated with default settings, as the README's command does on a fresh clone.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINIC_")}
    subprocess.run(
        [
            str(BIN / "faststream"),
            "docs",
            "gen",
            "clinic.handlers:app",
            "--yaml",
            "--out",
            str(tmp_path / "asyncapi.yaml"),
        ],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )
    # Compared as data: the order of channels depends on where the package is installed.
    generated = yaml.safe_load((tmp_path / "asyncapi.yaml").read_text())
    committed = yaml.safe_load((ROOT / "asyncapi.yaml").read_text())
    assert generated == committed, (
        "asyncapi.yaml is stale: regenerate it with "
        "`faststream docs gen clinic.handlers:app --yaml`"
    )


def test_asyncapi_describes_every_queue_exchange_and_message() -> None:
    spec = yaml.safe_load((ROOT / "asyncapi.yaml").read_text())
    channels = spec["channels"]
    names = set()
    for channel in channels.values():
        amqp = channel["bindings"]["amqp"]
        names |= {channel.get("address"), amqp.get("queue", {}).get("name")}
        names.add(amqp.get("exchange", {}).get("name"))
    assert {
        "booking_requests",
        "email_notifications",
        "booking_notifications",
        "parked_messages",
    } <= names
    assert all(channel.get("description") for channel in channels.values())
    schemas = spec["components"]["schemas"]
    assert {"BookAppointment", "BookingStatusChanged"} <= schemas.keys()
    assert schemas["BookAppointment"]["required"] == ["bookingId"]
