"""How many bookings one client may ask for: per minute and per day, by client address.

Counted in each API process's memory, in fixed windows (a minute, a UTC day),
so the limit costs no database round trip; with N API processes a client may
get up to N times the limit, and the reverse proxy should limit too (README).
"""

import time
from ipaddress import IPv4Network, IPv6Address, IPv6Network, ip_address

from starlette.requests import Request

from clinic.settings import settings

MAX_ADDRESSES = 100_000
"""Addresses one window keeps counts for; past that, new addresses go uncounted
until the window ends (admission control still bounds the backlog)."""


class WindowCounter:
    """Requests per address in the current fixed window of ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._window = -1
        self._counts: dict[str, int] = {}

    def take(self, address: str, limit: int, now: float | None = None) -> float | None:
        """Count one request from ``address``: None if within ``limit``, else seconds to wait."""
        now = time.time() if now is None else now
        window = int(now // self.seconds)
        if window != self._window:
            self._window, self._counts = window, {}
        count = self._counts.get(address, 0)
        if count >= limit:
            return (window + 1) * self.seconds - now
        if count or len(self._counts) < MAX_ADDRESSES:
            self._counts[address] = count + 1
        return None


def client_address(request: Request) -> str:
    """Who is asking: the peer, or, behind a trusted proxy, the client it names.

    ``X-Forwarded-For`` is read right to left, skipping the trusted proxies, so
    a client cannot choose its own address by sending the header itself. An IPv6
    client counts by its /64 network: one host holds a whole /64.
    """
    peer = request.client.host if request.client else ""
    trusted = settings.trusted_proxy_networks
    address = peer
    if trusted and _within(peer, trusted):
        forwarded = ",".join(request.headers.getlist("x-forwarded-for"))
        for hop in reversed([hop.strip() for hop in forwarded.split(",") if hop.strip()]):
            address = hop
            if not _within(hop, trusted):
                break
    return _counted_as(address)


def _within(address: str, networks: tuple[IPv4Network | IPv6Network, ...]) -> bool:
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed.version == net.version and parsed in net for net in networks)


def _counted_as(address: str) -> str:
    try:
        parsed = ip_address(address)
    except ValueError:
        return address[:64]  # not an address (a test client's name): counted as given
    if isinstance(parsed, IPv6Address) and parsed.ipv4_mapped is None:
        return f"{ip_address(int(parsed) >> 64 << 64)}/64"
    return str(parsed.ipv4_mapped if isinstance(parsed, IPv6Address) else parsed)


class BookingRate:
    """The per-address limits of ``POST /book``: ``CLINIC_BOOKINGS_PER_MINUTE`` and ``_PER_DAY``."""

    def __init__(self) -> None:
        self._minute = WindowCounter(60)
        self._day = WindowCounter(86400)

    def take(self, address: str) -> tuple[str, float] | None:
        """Count one booking request from ``address``; if over a limit, the message and wait."""
        wait = self._minute.take(address, settings.bookings_per_minute)
        if wait is not None:
            return (
                f"At most {settings.bookings_per_minute} bookings a minute from one address.",
                wait,
            )
        wait = self._day.take(address, settings.bookings_per_day)
        if wait is not None:
            return f"At most {settings.bookings_per_day} bookings a day from one address.", wait
        return None
