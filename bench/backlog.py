"""A rush: more bookings at once than one worker decides within the outbox's grace period.

2,000 bookings posted at once to one booking worker that takes the original
design's 2-5 s per decision: most of them wait in the queue for longer than
``CLINIC_OUTBOX_GRACE``, so the outbox relay finds their requests overdue and
has to tell, for each, that it reached the broker. What that costs per booking,
by process, is the figure; the rate is the worker's (prefetch ÷ mean delay).
"""

from pathlib import Path

from bench.environment import median
from bench.figures import Row, cpu_figures, cpu_rows, in_turn, one_worker_run, row
from bench.pipeline import Pipeline


def backlog_rows(workdir: Path, runs: int, baseline: dict[str, str] | None) -> list[Row]:
    ours, theirs = in_turn(
        runs, baseline, lambda env: one_worker_run(workdir, env, "2-5", "backlog")
    )

    def figures(results: list[Pipeline]) -> dict[str, float]:
        return {"rate": median([r.per_second for r in results]), **cpu_figures(results)}

    now = figures(ours)
    before = figures(theirs) if theirs else None
    title = "2,000 bookings at once, 1 worker, 2-5 s: bookings/s"
    return [row(title, now, before, "rate", "{:.1f}"), *cpu_rows(now, before, "")]
