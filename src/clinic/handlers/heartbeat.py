"""The workers' heartbeat: how a container healthcheck tells that a worker is working.

The workers serve no HTTP. Instead, a worker process touches a file every few
seconds while its broker connection is up, and the healthcheck asks whether the
file is fresh::

    python -m clinic.handlers.heartbeat check --max-age 30

exits 0 only if a worker touched the file within the last 30 seconds. A worker
that cannot reach RabbitMQ, or hangs, stops touching it and turns unhealthy. The
file is ``clinic-worker-alive`` in the temporary directory, or the path in the
``CLINIC_HEARTBEAT_FILE`` environment variable.
"""

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

INTERVAL = 5.0
"""Seconds between two beats: well inside any ``--max-age`` a healthcheck would use."""


class Pingable(Protocol):
    """A broker connection that can say whether it is up (every FastStream broker can)."""

    async def ping(self, wait: float | None, /) -> bool:
        """Whether the connection is up, waiting up to ``wait`` seconds for it."""
        ...


def heartbeat_file() -> Path:
    """The file the workers of this container (or machine) keep fresh."""
    configured = os.environ.get("CLINIC_HEARTBEAT_FILE")
    return Path(configured) if configured else Path(tempfile.gettempdir(), "clinic-worker-alive")


async def beat(brokers: Sequence[Pingable], interval: float = INTERVAL) -> None:
    """Touch the heartbeat file every ``interval`` seconds while all ``brokers`` are connected.

    Runs until cancelled. Before the brokers have started, and while one is
    reconnecting, the file is left alone to age.
    """
    path = heartbeat_file()
    # A file left by an earlier run of this container must not vouch for this one.
    path.unlink(missing_ok=True)
    while True:
        connected = [await broker.ping(interval) for broker in brokers]
        if connected and all(connected):
            path.touch()
        await asyncio.sleep(interval)


def is_fresh(path: Path, max_age: float) -> bool:
    """Whether a worker touched ``path`` within the last ``max_age`` seconds."""
    try:
        touched = path.stat().st_mtime
    except OSError:
        return False
    return time.time() - touched <= max_age


def main(argv: Sequence[str] | None = None) -> int:
    """``check --max-age SECONDS``: 0 if a worker beat within that time, 1 otherwise."""
    parser = argparse.ArgumentParser(
        prog="python -m clinic.handlers.heartbeat",
        description="Health of the clinic's workers, for a container healthcheck.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "check", help="exit 0 only if a worker's broker connection was up recently"
    )
    check.add_argument(
        "--max-age",
        type=float,
        default=30.0,
        help="seconds since the last heartbeat beyond which the worker is unhealthy",
    )
    args = parser.parse_args(argv)
    path = heartbeat_file()
    if is_fresh(path, args.max_age):
        return 0
    print(f"no worker heartbeat in {path} within {args.max_age:g}s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
