"""All workers in one process: ``faststream run clinic.handlers:app --workers N``."""

from clinic.handlers import booking, notifications
from clinic.handlers.runtime import worker_app

__all__ = ["app", "booking", "notifications"]

app = worker_app("clinic workers")
