"""The workers. ``faststream run clinic.handlers:app --workers N`` runs both handlers.

``clinic.handlers.booking:app`` and ``clinic.handlers.notifications:app`` run one each,
so they scale separately. Importing one of them imports this package first, so the
combined ``app`` is built on first access only: otherwise every worker process would
register, and consume with, both handlers.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from faststream import FastStream


def __getattr__(name: str) -> "FastStream":
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from clinic.handlers import booking, notifications  # noqa: F401  (register both handlers)
    from clinic.handlers.runtime import worker_app

    globals()["app"] = combined = worker_app("clinic workers", outbox_relay=True)
    return combined
