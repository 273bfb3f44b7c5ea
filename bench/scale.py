"""Scaling out on one machine: what a second API process and a second booking worker add.

- ``POST /book`` under wrk: one API process, then two (``uvicorn --workers 2``).
- Zero delay, 2,000 bookings: one booking worker, two booking workers, and two
  booking workers behind two API processes.

Each configuration runs in turn with the others, run after run, each in a vhost
and database of its own; each figure is the median of the runs, and each ratio
is to the one-process configuration of the same run.
"""

from collections.abc import Callable
from pathlib import Path

from bench.api import measure_ours
from bench.environment import Clinic, clinic_cpu, median
from bench.pipeline import run_pipeline

Row = tuple[str, ...]
NO_DELAY = {"CLINIC_CONFIRM_DELAY_MIN": "0", "CLINIC_CONFIRM_DELAY_MAX": "0"}


def api_rate(workdir: Path, processes: int) -> tuple[float, float]:
    """POST /book per second with ``processes`` API processes, and CPU ms per request."""
    with Clinic(workdir) as clinic:
        run = measure_ours(clinic, processes)
    cpu = clinic_cpu(run.cpu_ms)
    print(f"scale: {processes} API process(es): {run.load.per_second:.0f} req/s", flush=True)
    return run.load.per_second, cpu


def pipeline_rate(workdir: Path, workers: int, api_processes: int) -> tuple[float, float]:
    """Zero-delay bookings per second, and CPU ms per booking of the clinic's processes."""
    with Clinic(workdir, env=dict(NO_DELAY)) as clinic:
        result = run_pipeline(clinic, workers, 2000, 64, api_processes)
    cpu = clinic_cpu(result.cpu_ms)
    print(
        f"scale: {api_processes} API, {workers} booking worker(s): "
        f"{result.per_second:.0f} bookings/s",
        flush=True,
    )
    return result.per_second, cpu


def rows(workdir: Path, runs: int) -> list[Row]:
    """The scaling table: each configuration's rate, its ratio to one process, its CPU."""
    one_api, one_worker = "POST /book, 1 API process", "zero delay, 1 API, 1 booking worker"
    # Each setup, and the one-process setup its ratio is to.
    setups: dict[str, tuple[Callable[[], tuple[float, float]], str]] = {
        one_api: (lambda: api_rate(workdir, 1), one_api),
        "POST /book, 2 API processes": (lambda: api_rate(workdir, 2), one_api),
        one_worker: (lambda: pipeline_rate(workdir, 1, 1), one_worker),
        "zero delay, 1 API, 2 booking workers": (lambda: pipeline_rate(workdir, 2, 1), one_worker),
        "zero delay, 2 API, 2 booking workers": (lambda: pipeline_rate(workdir, 2, 2), one_worker),
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in setups}
    for _ in range(runs):
        for name, (measure, _) in setups.items():
            results[name].append(measure())
    table: list[Row] = []
    for name, measured in results.items():
        first = results[setups[name][1]]
        ratio = median([r / f for (r, _), (f, _) in zip(measured, first, strict=True)])
        rate = median([r for r, _ in measured])
        cpu = median([c for _, c in measured])
        table.append((name, f"{rate:.0f}", f"{ratio:.2f}", f"{cpu:.2f}"))
    return table
