"""clinic: event-driven appointment booking for medical clinics."""

__version__ = "0.1.0"
