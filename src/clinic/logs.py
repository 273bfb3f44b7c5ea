"""Log format shared by the API and the workers."""

import logging


class _BookingIdFilter(logging.Filter):
    """Give every record a ``booking_id`` so one booking can be followed across processes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "booking_id"):
            record.booking_id = "-"
        return True


def configure_logging(level: str) -> None:
    """Send the clinic's logs to stderr as ``time level logger [booking id] message``."""
    handler = logging.StreamHandler()
    handler.addFilter(_BookingIdFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(booking_id)s] %(message)s")
    )
    clinic = logging.getLogger("clinic")
    clinic.handlers[:] = [handler]
    clinic.setLevel(level.upper())
    clinic.propagate = False
