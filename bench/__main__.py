"""``python -m bench``: run the benchmarks (for now, the booking worker's concurrency)."""

from bench.concurrency import main

main()
