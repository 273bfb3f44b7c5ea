"""``clinic parked list|replay``: see what was parked and why, and re-drive it."""

import argparse
import asyncio
import sys

from clinic.messaging.parking import ParkedMessage, list_parked, replay_parked
from clinic.settings import settings


def _table(messages: list[ParkedMessage]) -> str:
    rows = [("ID", "FROM", "BOOKING", "PARKED AT", "REASON")]
    rows += [(m.id, m.origin, m.booking_id, m.parked_at, m.reason) for m in messages]
    widths = [max(len(row[i]) for row in rows) for i in range(4)] + [0]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    )


def parked_list(args: argparse.Namespace) -> int:
    """Print the parked messages with where they came from and why they were parked."""
    messages = asyncio.run(list_parked(settings.rabbit_url))
    if messages:
        print(_table(messages))
    print(f"{len(messages)} parked message(s)")
    return 0


def parked_replay(args: argparse.Namespace) -> int:
    """Send parked messages back to their queues, once the cause of their failure is fixed."""
    if not args.all and not args.ids:
        print("clinic parked replay: give message ids, or --all", file=sys.stderr)
        return 2
    wanted = None if args.all else set(args.ids)
    replayed = asyncio.run(replay_parked(settings.rabbit_url, wanted))
    for message in replayed:
        print(f"replayed {message.id} to {message.origin}")
    missing = (wanted or set()) - {m.id for m in replayed}
    for message_id in sorted(missing):
        print(f"no replayable parked message {message_id}", file=sys.stderr)
    print(f"{len(replayed)} message(s) replayed")
    return 1 if missing else 0
