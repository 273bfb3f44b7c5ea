"""``clinic patient export|erase EMAIL``: a patient's right to a copy of their data, and to
its erasure, across every collection and the parking queue."""

import argparse
import asyncio
import json
import logging
import sys
from dataclasses import asdict
from typing import Any

from clinic.domain.patient_data import Erasure, erase, export
from clinic.logs import configure_logging
from clinic.redaction import mask_email
from clinic.settings import settings
from clinic.store.database import connect_database

audit = logging.getLogger("clinic.audit")


async def _with_database(work: Any) -> Any:
    client = await connect_database(create_indexes=False)
    try:
        return await work
    finally:
        await client.close()


def patient_export(args: argparse.Namespace) -> int:
    """Print, as JSON, everything the clinic holds about the patient with this address."""
    configure_logging(settings.log_level)
    data = asyncio.run(_with_database(export(args.email)))
    audit.info("operator exported the data of %s", mask_email(args.email))
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
    print()
    return 0


def patient_erase(args: argparse.Namespace) -> int:
    """Erase the patient's name, email and keys everywhere, cancelling what is to come."""
    if not args.yes:
        print(
            "clinic patient erase: this cannot be undone; run `clinic patient export` first "
            "if a copy is needed, then repeat with --yes",
            file=sys.stderr,
        )
        return 2
    configure_logging(settings.log_level)
    erased: Erasure = asyncio.run(_with_database(erase(args.email)))
    audit.info(
        "operator erased the data of %s: %d bookings", mask_email(args.email), erased.bookings
    )
    print(json.dumps(asdict(erased), indent=2))
    return 0


def add_patient_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """``clinic patient export EMAIL`` and ``clinic patient erase EMAIL --yes``."""
    patient = commands.add_parser("patient", help="a patient's data: export or erase it")
    actions = patient.add_subparsers(dest="action", required=True, metavar="ACTION")
    exporting = actions.add_parser("export", help="print all the patient's data as JSON")
    exporting.add_argument("email", help="the patient's email address, however written")
    exporting.set_defaults(handler=patient_export)
    erasing = actions.add_parser("erase", help="erase the patient's data everywhere")
    erasing.add_argument("email", help="the patient's email address, however written")
    erasing.add_argument("--yes", action="store_true", help="really erase: it cannot be undone")
    erasing.set_defaults(handler=patient_erase)
