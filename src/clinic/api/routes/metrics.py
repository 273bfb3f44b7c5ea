"""GET /metrics: the API process's metrics in the Prometheus text format.

Unauthenticated, like /health: the reverse proxy must not expose it to the
public (README, "Metrics"). Not in the OpenAPI document: it is for Prometheus,
not for the clinic's clients.
"""

import math

from fastapi import APIRouter
from fastapi.responses import Response

from clinic.api.deps import Backlog
from clinic.domain.outbox import oldest_unsent_age
from clinic.metrics import exposition, show_backlog
from clinic.store.database import DatabaseUnavailable

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(backlog: Backlog) -> Response:
    """The metrics, with the outbox's oldest unsent age and the pending backlog read now."""
    try:
        # Two bounded reads; the pending count is shared with POST /book's, once a second.
        show_backlog(await oldest_unsent_age(), await backlog.count())
    except DatabaseUnavailable:
        # Unknown, not zero: a database outage must not look like an empty backlog.
        show_backlog(math.nan, math.nan)
    body, content_type = exposition()
    return Response(body, media_type=content_type)
