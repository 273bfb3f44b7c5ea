"""HTTP API: patients book and look up appointments (``uvicorn clinic.api:app``).

The API stores a booking, then publishes its request to the booking workers
(see ``clinic.domain.outbox``). It never consumes. The routes live in
``clinic.api.routes``.
"""

from clinic.api.main import create_app

app = create_app()

__all__ = ["app", "create_app"]
