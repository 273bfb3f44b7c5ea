"""The ``clinic`` command: ``dev``, ``parked list|replay``, ``patient export|erase``."""

import argparse

from clinic.cli.dev import dev
from clinic.cli.parked import parked_list, parked_replay
from clinic.cli.patients import add_patient_commands


def build_parser() -> argparse.ArgumentParser:
    """The ``clinic`` argument parser, one subcommand per task."""
    parser = argparse.ArgumentParser(prog="clinic", description="Clinic appointment booking.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("dev", help="run the API and the workers on this machine")
    run.add_argument("--host", default="127.0.0.1", help="API address (default: %(default)s)")
    run.add_argument("--port", type=int, default=3000, help="API port (default: %(default)s)")
    run.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    run.set_defaults(handler=dev)
    parked = commands.add_parser("parked", help="inspect and re-drive parked messages")
    actions = parked.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="show parked messages and why").set_defaults(
        handler=parked_list
    )
    replay = actions.add_parser("replay", help="send parked messages back to their queues")
    replay.add_argument("ids", nargs="*", metavar="ID", help="ids shown by `clinic parked list`")
    replay.add_argument("--all", action="store_true", help="replay every parked message")
    replay.set_defaults(handler=parked_replay)
    add_patient_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``clinic`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    return int(args.handler(args))
