"""The workers. ``faststream run clinic.handlers:app --workers N`` runs both handlers.

``clinic.handlers.booking:app`` and ``clinic.handlers.notifications:app`` run one
each, so they scale separately. Every app has a broker and routers of its own, so
building one never adds handlers to another.
"""

from clinic.handlers.app import worker_app
from clinic.handlers.booking import booking_router
from clinic.handlers.notifications import notifications_router

app = worker_app("clinic workers", booking_router(), notifications_router(), outbox_relay=True)

__all__ = ["app", "booking_router", "notifications_router", "worker_app"]
