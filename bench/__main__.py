"""Run every benchmark and print our figures beside the original system's and the targets.

    python -m bench [--runs 3] [--only api,original,zero,listing,concurrency]

Each figure is the median of ``--runs`` runs; each run has its own vhost,
database and SecantusDB server (unless ``CLINIC_MONGO_URL`` names a MongoDB).
Needs RabbitMQ at 127.0.0.1:5672 and ``rabbitmqctl``; installs wrk if missing.
"""

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from bench import concurrency, listing
from bench.api import measure_bare, measure_ours
from bench.environment import Clinic, median
from bench.pipeline import run_pipeline
from clinic.embedded_db import free_port

ALL = ("api", "original", "zero", "listing", "concurrency")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (default 3)")
    parser.add_argument("--only", default=",".join(ALL), help=f"a subset of {','.join(ALL)}")
    args = parser.parse_args(argv)
    chosen = args.only.split(",")
    rows: list[tuple[str, str, str, str]] = []
    workdir = Path(tempfile.mkdtemp(prefix="clinic-bench-"))
    try:
        if "api" in chosen:
            rows += api_rows(workdir, args.runs)
        if "original" in chosen:
            rows += original_rows(workdir, args.runs)
        if "zero" in chosen:
            rows += zero_rows(workdir, args.runs)
        if "listing" in chosen:
            with Clinic(workdir) as clinic:
                print_listing(listing.run(clinic))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(rows)
    if "concurrency" in chosen:
        print()
        concurrency.main(["--runs", str(args.runs)])


def api_rows(workdir: Path, runs: int) -> list[tuple[str, str, str, str]]:
    ours, bare, peaks, lost = [], [], [], []
    for number in range(1, runs + 1):
        with Clinic(workdir) as clinic:
            load, accepted, stored, enqueued, peak = measure_ours(clinic)
        reference = measure_bare(workdir, free_port())
        ours.append(load)
        bare.append(reference.per_second)
        peaks.append(peak)
        # wrk does not count answers still in flight when it stops, so stored >= accepted.
        lost.append(max(0, accepted - stored) + max(0, stored - enqueued))
        print(
            f"api run {number}: {load.per_second:.0f} req/s, p50 {load.p50_ms:.0f} ms, "
            f"p99 {load.p99_ms:.0f} ms, non-2xx {load.non_2xx}; accepted {accepted}, "
            f"stored {stored}, enqueued {enqueued}; bare {reference.per_second:.0f} req/s",
            flush=True,
        )
    rate = median([x.per_second for x in ours])
    p50, p99 = median([x.p50_ms for x in ours]), median([x.p99_ms for x in ours])
    ratio = median([o.per_second / b for o, b in zip(ours, bare, strict=True)])
    failed = sum(x.non_2xx for x in ours)
    return [
        ("POST /book req/s (64 conn, 15 s)", f"{rate:.0f}", "905", ">= 1,100"),
        ("  p50 / p99 ms", f"{p50:.0f} / {p99:.0f}", "66 / 450", "p99 <= 225"),
        ("  non-2xx; lost (accepted - stored/enqueued)", f"{failed}; {max(lost)}", "-", "0 lost"),
        ("  ratio to bare FastAPI (same run)", f"{ratio:.2f}", "-", "-"),
        ("API peak RSS MB (after the load)", f"{median(peaks):.0f}", "196", "<= 150"),
    ]


def original_rows(workdir: Path, runs: int) -> list[tuple[str, str, str, str]]:
    seconds = []
    for number in range(1, runs + 1):
        delays = {"CLINIC_CONFIRM_DELAY_MIN": "2", "CLINIC_CONFIRM_DELAY_MAX": "5"}
        with Clinic(workdir, env=delays) as clinic:
            result = run_pipeline(clinic, workers=3, count=60, concurrency=60)
        seconds.append(result.seconds)
        print(
            f"original settings run {number}: all 60 terminal after {result.seconds:.1f} s",
            flush=True,
        )
    return [
        (
            "60 bookings, 3 workers, 2-5 s: s to all terminal",
            f"{median(seconds):.1f}",
            "74",
            "<= 7.5",
        )
    ]


def zero_rows(workdir: Path, runs: int) -> list[tuple[str, str, str, str]]:
    results = []
    for number in range(1, runs + 1):
        no_delay = {"CLINIC_CONFIRM_DELAY_MIN": "0", "CLINIC_CONFIRM_DELAY_MAX": "0"}
        with Clinic(workdir, env=no_delay) as clinic:
            result = run_pipeline(clinic, workers=1, count=2000, concurrency=64)
        results.append(result)
        print(
            f"zero delay run {number}: {result.per_second:.0f} bookings/s "
            f"(all posted after {result.posting_seconds:.1f} s), "
            f"p50 {result.p50_ms:.0f} ms, p99 {result.p99_ms:.0f} ms; "
            f"RSS at rest {fmt(result.rss_at_rest)}, after {fmt(result.rss_after)}",
            flush=True,
        )
    rate = median([r.per_second for r in results])
    p50, p99 = median([r.p50_ms for r in results]), median([r.p99_ms for r in results])
    worker_rest = median([r.rss_at_rest["booking-worker-0"] for r in results])
    worker_after = median([r.rss_after["booking-worker-0"] for r in results])
    api_rest = median([r.rss_at_rest["api"] for r in results])
    return [
        ("2,000 bookings, 1 worker, zero delay: bookings/s", f"{rate:.0f}", "18 (78)", ">= 312"),
        ("  POST -> terminal p50 / p99 ms", f"{p50:.0f} / {p99:.0f}", "-", "-"),
        (
            "booking worker RSS MB at rest / after",
            f"{worker_rest:.0f} / {worker_after:.0f}",
            "73-96",
            "<= 96",
        ),
        ("API RSS MB at rest", f"{api_rest:.0f}", "78", "-"),
    ]


def print_listing(rows: list[tuple[str, float, int, str, float, float]]) -> None:
    first = rows[0][1]
    title = f"GET /bookings, {listing.BOOKINGS:,} bookings"
    print(f"\n{title:<28} {'median ms':>9} {'x first':>7} {'count':>7}  {'count ms':>8}", end="")
    print(f" {'page ms':>7}  index")
    for name, ms, count, index, count_ms, page_ms in rows:
        print(f"{name:<28} {ms:>9.1f} {ms / first:>7.2f} {count:>7}  {count_ms:>8.1f}", end="")
        print(f" {page_ms:>7.1f}  {index}")
    sys.stdout.flush()


def fmt(rss: dict[str, float]) -> str:
    return ", ".join(f"{name} {mb:.0f} MB" for name, mb in rss.items())


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    if not rows:
        return
    header = ("measurement (median)", "clinic", "original", "target")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    print()
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
