"""Benchmarks of the clinic's services, run against real processes on this machine."""
