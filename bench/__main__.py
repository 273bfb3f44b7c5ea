"""Run every benchmark and print the clinic's figures as ratios to yardsticks of the same run.

    python -m bench [--runs 3]
                    [--only api,original,zero,backlog,listing,concurrency,scale,instructions]
                    [--baseline REV]

Each figure is the median of ``--runs`` runs; each run has its own vhost,
database and SecantusDB server (unless ``CLINIC_MONGO_URL`` names a MongoDB).
The yardstick for ``POST /book`` is a bare FastAPI endpoint measured right after
each run. ``--only instructions`` counts the instructions each process executes per
booking under callgrind instead of timing it: slow, but unmoved by the machine's
noise (``bench.instructions``). ``--baseline REV`` also runs the clinic of an earlier
commit (its ``src/`` from git) run by run in turn with this one, and prints the
ratio of each figure. Needs RabbitMQ at 127.0.0.1:5672 and ``rabbitmqctl``;
installs wrk, and valgrind for the instructions, if missing.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import concurrency, listing, scale
from bench.backlog import backlog_rows
from bench.environment import Clinic
from bench.figures import Row, api_rows, original_rows, zero_rows
from bench.instructions import instruction_rows

ALL = ("api", "original", "zero", "backlog", "listing", "concurrency")
"""What a plain ``python -m bench`` runs; ``scale`` and ``instructions`` run only when named."""
ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (default 3)")
    parser.add_argument("--only", default=",".join(ALL), help=f"a subset of {','.join(ALL)}")
    parser.add_argument("--baseline", help="a git revision to run in turn with this checkout")
    args = parser.parse_args(argv)
    chosen = args.only.split(",")
    rows: list[Row] = []
    workdir = Path(tempfile.mkdtemp(prefix="clinic-bench-"))
    try:
        with baseline_source(args.baseline, workdir) as baseline:
            if "api" in chosen:
                rows += api_rows(workdir, args.runs, baseline)
            if "original" in chosen:
                rows += original_rows(workdir, args.runs)
            if "zero" in chosen:
                rows += zero_rows(workdir, args.runs, baseline)
            if "backlog" in chosen:
                rows += backlog_rows(workdir, args.runs, baseline)
            if "instructions" in chosen:
                rows += instruction_rows(workdir, args.runs, baseline)
        if "listing" in chosen:
            with Clinic(workdir) as clinic:
                print_listing(listing.run(clinic))
        scaling = scale.rows(workdir, args.runs) if "scale" in chosen else []
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(rows, args.baseline)
    print_scaling(scaling)
    if "concurrency" in chosen:
        print()
        concurrency.main(["--runs", str(args.runs)])


@contextmanager
def baseline_source(revision: str | None, workdir: Path) -> Iterator[dict[str, str] | None]:
    """The environment that runs the clinic of ``revision``: its ``src/`` first on the path."""
    if revision is None:
        yield None
        return
    tree = workdir / "baseline"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "src"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    yield {"PYTHONPATH": str(tree / "src")}


def print_listing(rows: list[tuple[str, float, int, str, float, float]]) -> None:
    first = rows[0][1]
    title = f"GET /bookings, {listing.BOOKINGS:,} bookings"
    print(f"\n{title:<28} {'median ms':>9} {'x first':>7} {'count':>7}  {'count ms':>8}", end="")
    print(f" {'page ms':>7}  index")
    for name, ms, count, index, count_ms, page_ms in rows:
        print(f"{name:<28} {ms:>9.1f} {ms / first:>7.2f} {count:>7}  {count_ms:>8.1f}", end="")
        print(f" {page_ms:>7.1f}  {index}")
    sys.stdout.flush()


def print_scaling(rows: list[Row]) -> None:
    if not rows:
        return
    header = ("scaling out (median)", "per second", "x one process", "CPU ms per booking")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    print()
    for line in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
    sys.stdout.flush()


def print_table(rows: list[Row], baseline: str | None) -> None:
    if not rows:
        return
    header: Row = ("measurement (median)", "clinic", "target")
    if baseline is not None:
        header = ("measurement (median)", "clinic", f"baseline {baseline}", "ratio", "target")
    # Rows of the runs without a baseline (the original settings) have no ratio.
    rows = [
        r if len(r) == len(header) else (r[0], r[1], *[""] * (len(header) - 3), r[-1]) for r in rows
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print()
    for line in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
