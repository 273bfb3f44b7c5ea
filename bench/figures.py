"""The figures of each benchmark, as rows of the table: medians of the runs, beside a
baseline's run in turn with them when there is one, with their targets."""

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from bench.api import ApiRun, measure_bare, measure_ours
from bench.environment import LOAD_GENERATOR, Clinic, clinic_cpu, median
from bench.pipeline import Pipeline, run_pipeline
from clinic.embedded_db import free_port

Row = tuple[str, ...]
Run = TypeVar("Run")

# The targets of the CPU-per-booking work: ms of CPU per POST /book and per booking.
API_CPU_TARGET, DATABASE_CPU_TARGET = 0.45, 0.35
RATIO_TARGET = 0.34
"""POST /book as a share of the bare yardstick: 1.2 x the original system, measured
side by side at 0.28 of the same yardstick (docs/performance.md)."""


def in_turn(
    runs: int, baseline: dict[str, str] | None, measure: Callable[[dict[str, str]], Run]
) -> tuple[list[Run], list[Run]]:
    """``runs`` runs of this checkout, each after one of the baseline's if there is one."""
    ours: list[Run] = []
    theirs: list[Run] = []
    for _ in range(runs):
        if baseline is not None:
            theirs.append(measure(baseline))
        ours.append(measure({}))
    return ours, theirs


def api_rows(workdir: Path, runs: int, baseline: dict[str, str] | None) -> list[Row]:
    def measure(env: dict[str, str]) -> tuple[ApiRun, float, float]:
        with Clinic(workdir, env=dict(env)) as clinic:
            run = measure_ours(clinic)
        bare, bare_cpu = measure_bare(workdir, free_port())
        who = "baseline" if env else "clinic"
        print(
            f"api run ({who}): {run.load.per_second:.0f} req/s, p50 {run.load.p50_ms:.0f} ms, "
            f"p99 {run.load.p99_ms:.0f} ms, non-2xx {run.load.non_2xx}; accepted "
            f"{run.accepted}, stored {run.stored}, enqueued {run.enqueued}; bare "
            f"{bare.per_second:.0f} req/s; CPU ms/request {fmt_ms(run.cpu_ms)}, "
            f"bare {bare_cpu:.2f}",
            flush=True,
        )
        return run, bare.per_second, bare_cpu

    ours, theirs = in_turn(runs, baseline, measure)

    def figures(results: list[tuple[ApiRun, float, float]]) -> dict[str, float]:
        return {
            "rate": median([r.load.per_second for r, _, _ in results]),
            "ratio": median([r.load.per_second / bare for r, bare, _ in results]),
            "p50": median([r.load.p50_ms for r, _, _ in results]),
            "p99": median([r.load.p99_ms for r, _, _ in results]),
            "lost": max(r.lost for r, _, _ in results),
            "non_2xx": sum(r.load.non_2xx for r, _, _ in results),
            "rss": median([r.peak_rss_mb for r, _, _ in results]),
            "bare": median([bare for _, bare, _ in results]),
            "bare_cpu": median([cpu for _, _, cpu in results]),
            **{
                f"cpu {name}": median([r.cpu_ms.get(name, 0.0) for r, _, _ in results])
                for name in ("api", "database", "rabbitmq", LOAD_GENERATOR)
            },
        }

    now = figures(ours)
    before = figures(theirs) if theirs else None
    return [
        row("POST /book req/s (64 connections, 15 s)", now, before, "rate", "{:.0f}"),
        row(
            "  ratio to bare FastAPI, same run",
            now,
            before,
            "ratio",
            "{:.2f}",
            f">= {RATIO_TARGET}",
        ),
        row("  bare FastAPI req/s (the yardstick)", now, before, "bare", "{:.0f}"),
        row("  p50 ms", now, before, "p50", "{:.0f}"),
        row("  p99 ms", now, before, "p99", "{:.0f}", "<= baseline's"),
        row("  non-2xx", now, before, "non_2xx", "{:.0f}"),
        row("  lost (accepted - stored/enqueued)", now, before, "lost", "{:.0f}", "0"),
        row("  CPU ms per request: API", now, before, "cpu api", "{:.2f}", f"<= {API_CPU_TARGET}"),
        row("    database", now, before, "cpu database", "{:.2f}", f"<= {DATABASE_CPU_TARGET}"),
        row("    RabbitMQ", now, before, "cpu rabbitmq", "{:.2f}"),
        row("    wrk", now, before, "cpu load generator", "{:.2f}"),
        row("    bare FastAPI (the yardstick)", now, before, "bare_cpu", "{:.2f}"),
        row("API peak RSS MB (after the load)", now, before, "rss", "{:.0f}", "<= 150"),
    ]


def row(
    title: str,
    now: dict[str, float],
    before: dict[str, float] | None,
    key: str,
    form: str,
    target: str = "",
) -> Row:
    """One line of the table: ours, the baseline's and their ratio if there is one, target."""
    if before is None:
        return (title, form.format(now[key]), target)
    ratio = f"{now[key] / before[key]:.2f}" if before[key] else "-"
    return (title, form.format(now[key]), form.format(before[key]), ratio, target)


def original_rows(workdir: Path, runs: int) -> list[Row]:
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
        ("60 bookings, 3 workers, 2-5 s: s to all terminal", f"{median(seconds):.1f}", "<= 7.5")
    ]


PROCESSES = ("api", "booking-worker-0", "notification-worker", "database", "rabbitmq")


def one_worker_run(workdir: Path, env: dict[str, str], delay: str, title: str) -> Pipeline:
    """2,000 bookings posted at once to one booking worker taking ``delay`` seconds
    ("2-5") to decide each; ``env`` runs a baseline's source instead of this one."""
    low, _, high = delay.partition("-")
    delays = {"CLINIC_CONFIRM_DELAY_MIN": low, "CLINIC_CONFIRM_DELAY_MAX": high or low, **env}
    with Clinic(workdir, env=delays) as clinic:
        result = run_pipeline(clinic, workers=1, count=2000, concurrency=64)
    print(
        f"{title} run ({'baseline' if env else 'clinic'}): {result.per_second:.1f} "
        f"bookings/s (all posted after {result.posting_seconds:.1f} s), "
        f"p50 {result.p50_ms:.0f} ms, p99 {result.p99_ms:.0f} ms; "
        f"RSS at rest {fmt(result.rss_at_rest)}, after {fmt(result.rss_after)}; "
        f"CPU ms/booking {fmt_ms(result.cpu_ms)}",
        flush=True,
    )
    return result


def cpu_figures(results: list[Pipeline]) -> dict[str, float]:
    """The median CPU per booking of all the clinic's processes, and of each."""
    return {
        "cpu total": median([clinic_cpu(r.cpu_ms) for r in results]),
        **{
            f"cpu {name}": median([r.cpu_ms.get(name, 0.0) for r in results])
            for name in (*PROCESSES, LOAD_GENERATOR)
        },
    }


def cpu_rows(now: dict[str, float], before: dict[str, float] | None, target: str) -> list[Row]:
    """The CPU per booking, of all the clinic's processes and then of each."""
    title = "  CPU ms per booking, all the clinic's processes"
    return [row(title, now, before, "cpu total", "{:.2f}", target)] + [
        row(f"    {name}", now, before, f"cpu {name}", "{:.2f}")
        for name in (*PROCESSES, LOAD_GENERATOR)
    ]


def zero_rows(workdir: Path, runs: int, baseline: dict[str, str] | None) -> list[Row]:
    ours, theirs = in_turn(
        runs, baseline, lambda env: one_worker_run(workdir, env, "0", "zero delay")
    )

    def figures(results: list[Pipeline]) -> dict[str, float]:
        return {
            "rate": median([r.per_second for r in results]),
            "p50": median([r.p50_ms for r in results]) / 1000,
            "p99": median([r.p99_ms for r in results]) / 1000,
            "worker rest": median([r.rss_at_rest["booking-worker-0"] for r in results]),
            "worker after": median([r.rss_after["booking-worker-0"] for r in results]),
            "api rest": median([r.rss_at_rest["api"] for r in results]),
            **cpu_figures(results),
        }

    now = figures(ours)
    before = figures(theirs) if theirs else None
    rate = "2,000 bookings, 1 worker, zero delay: bookings/s"
    return [
        row(rate, now, before, "rate", "{:.0f}", ">= 1.5 x baseline"),
        row("  POST -> decided p50 s", now, before, "p50", "{:.1f}"),
        row("  POST -> decided p99 s", now, before, "p99", "{:.1f}"),
        *cpu_rows(now, before, "<= half the baseline's"),
        row("booking worker RSS MB at rest", now, before, "worker rest", "{:.0f}", "<= 96"),
        row("booking worker RSS MB after", now, before, "worker after", "{:.0f}", "<= 96"),
        row("API RSS MB at rest", now, before, "api rest", "{:.0f}"),
    ]


def fmt(rss: dict[str, float]) -> str:
    return ", ".join(f"{name} {mb:.0f} MB" for name, mb in rss.items())


def fmt_ms(cpu: dict[str, float]) -> str:
    return ", ".join(f"{name} {ms:.2f}" for name, ms in cpu.items())
