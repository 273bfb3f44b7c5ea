"""The one place configuration is read: environment variables prefixed ``CLINIC_``."""

from collections.abc import Mapping
from datetime import timedelta
from email.utils import parseaddr
from functools import cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from types import MappingProxyType
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_TOKEN_LENGTH = 32
"""Shortest staff token taken: ``secrets.token_urlsafe(32)`` gives 43 characters."""
PLACEHOLDER_PREFIX = "change-me"
"""How every secret in ``.env.example`` starts; such a value is refused at startup."""
LogFormat = Literal["text", "json"]
"""How log lines are written: ``time pid level logger [booking] text``, or one JSON object."""


# Cached by value: read on every staff request and every booking, parsed once.
@cache
def _staff_pairs(value: str) -> tuple[tuple[str, str], ...]:
    """``name:token,name:token`` as pairs; ValueError, naming no token, if one is unfit."""
    pairs = []
    for position, entry in enumerate(filter(None, map(str.strip, value.split(","))), 1):
        name, colon, token = (part.strip() for part in entry.partition(":"))
        if not colon or not name or not token:
            raise ValueError(f"staff token {position} is not written as name:token")
        if len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(f"staff token {name!r} is shorter than {MIN_TOKEN_LENGTH} characters")
        pairs.append((name, token))
    return tuple(pairs)


@cache
def _names_by_token(value: str) -> Mapping[str, str]:
    return MappingProxyType({token: name for name, token in _staff_pairs(value)})


@cache
def _networks(value: str) -> tuple[IPv4Network | IPv6Network, ...]:
    return tuple(ip_network(entry) for entry in filter(None, map(str.strip, value.split(","))))


class Settings(BaseSettings):
    """Every knob of the clinic, read from ``CLINIC_*`` environment variables (or ``.env``)."""

    # hide_input_in_errors: a refused setting's error must not print a password or token.
    model_config = SettingsConfigDict(
        env_prefix="CLINIC_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    rabbit_url: str = Field(
        "amqp://guest:guest@127.0.0.1:5672/", description="RabbitMQ connection URL."
    )
    mongo_url: str = Field(
        "mongodb://127.0.0.1:27017/?retryWrites=false", description="MongoDB connection URL."
    )
    mongo_db: str = Field("clinic", description="MongoDB database name.")
    mongo_timeout: float = Field(
        2.0, gt=0, description="Seconds to wait for MongoDB before a request fails with 503."
    )
    mongo_pool_size: int = Field(
        16,
        ge=1,
        description=(
            "Most connections one process opens to MongoDB. Concurrent calls share "
            "their database commands, so a few busy connections serve well."
        ),
    )
    confirm_delay_min: float = Field(
        2.0, ge=0, description="Shortest simulated confirmation delay, in seconds."
    )
    confirm_delay_max: float = Field(
        5.0, ge=0, description="Longest simulated confirmation delay, in seconds."
    )
    retry_delay: float = Field(
        10.0, gt=0, description="Seconds a failed message waits in a retry queue."
    )
    body_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds a client may take to send a request body before a 408.",
    )
    max_retries: int = Field(3, ge=0, description="Retries before a message is parked.")
    prefetch: int = Field(
        100,
        ge=1,
        description=(
            "Messages one worker process handles at the same time. The confirmation is "
            "a wait, not work, and concurrent messages share their database writes."
        ),
    )
    publish_timeout: float = Field(
        5.0, gt=0, description="Seconds to wait for the broker to confirm a publish."
    )
    graceful_timeout: float = Field(
        15.0, gt=0, description="Seconds a stopping worker waits for in-flight messages."
    )
    outbox_grace: float = Field(
        10.0,
        gt=0,
        description=(
            "Seconds a message recorded in the outbox may wait to leave before the "
            "outbox relay sends it."
        ),
    )
    outbox_interval: float = Field(
        2.0, gt=0, description="Seconds between two scans of the outbox relay."
    )
    email_send_timeout: float = Field(
        10.0,
        gt=0,
        description=(
            "Seconds one email send may take; an unfinished send is retried after this long."
        ),
    )
    smtp_connections: int = Field(
        10,
        ge=1,
        description=(
            "Most connections one notification worker process holds to the SMTP server; "
            "more emails at once wait for one. Each is kept for the next email, up to 5 s."
        ),
    )
    smtp_url: str = Field(
        "",
        description=(
            "The SMTP server patients' emails go to: smtp://user:password@host:587 (STARTTLS), "
            "smtps://user:password@host:465 (TLS), or smtp://host:1025?tls=off (no TLS, for a "
            "sink such as Mailpit). Empty: emails are written to the log."
        ),
    )
    email_from: str = Field(
        "",
        description="The From of patients' emails, e.g. 'Clínica <citas@clinica.example>'.",
    )
    public_url: str = Field(
        "http://localhost:3000",
        description=(
            "Where patients reach the clinic: the manage link in their emails is this "
            "URL + /manage/<booking id>#<manage token>."
        ),
    )
    manage_token_key: str = Field(
        "",
        description=(
            "Secret (at least 32 characters) each booking's manage token is derived from, "
            "so that its emails can carry the manage link; the API and the notification "
            "workers need the same one. Empty: tokens are random and emails carry no link."
        ),
    )
    reminder_before: timedelta = Field(
        timedelta(hours=24),
        gt=timedelta(0),
        description=(
            "How long before a confirmed appointment the patient is reminded by email: "
            "seconds (86400) or an ISO 8601 duration (PT24H). A booking made closer to "
            "its appointment than this gets no separate reminder."
        ),
    )
    min_notice: timedelta = Field(
        timedelta(hours=24),
        ge=timedelta(0),
        description=(
            "How long before the appointment a patient may still cancel or move it with "
            "the manage token (seconds or an ISO 8601 duration; 0: until it begins). "
            "Staff are not limited by it."
        ),
    )
    queue_type: Literal["classic", "quorum"] = Field(
        "classic",
        description="RabbitMQ queue type of the work, retry and parking queues (quorum: clusters).",
    )
    idempotency_ttl: float = Field(
        86400.0, gt=0, description="Seconds an Idempotency-Key of POST /book is remembered."
    )
    booking_horizon_days: int = Field(
        90, ge=1, le=3650, description="How many days ahead patients may book."
    )
    active_bookings_per_email: int = Field(
        3,
        ge=0,
        description=(
            "Upcoming pending or confirmed bookings one email address may hold (0: no "
            "limit, and no database read for it)."
        ),
    )
    bookings_per_minute: int = Field(
        5, ge=1, description="Bookings one client address may ask for per minute, per API process."
    )
    bookings_per_day: int = Field(
        20, ge=1, description="Bookings one client address may ask for per day, per API process."
    )
    trusted_proxies: str = Field(
        "",
        description=(
            "Comma-separated addresses of the reverse proxies whose X-Forwarded-For names "
            "the client; from anyone else the header is ignored."
        ),
    )
    max_pending: int = Field(
        5000,
        ge=1,
        description=(
            "Booking requests waiting in the queue for a worker past which POST /book "
            "answers 503, so a flood cannot grow the queue without bound."
        ),
    )
    retention_days: int = Field(
        365,
        ge=1,
        description=(
            "Days after an appointment that the patient's name and email are kept; then "
            "the booking is anonymised."
        ),
    )
    worker_http_host: str = Field(
        "127.0.0.1",
        description=(
            "Address each worker process serves /health, /ready and /metrics on "
            "(0.0.0.0 in a container, for Prometheus)."
        ),
    )
    worker_http_port: int = Field(
        8001,
        ge=0,
        le=65535,
        description=(
            "Port of a worker process's /health, /ready and /metrics; with --workers N, "
            "child i listens on this port + i. 0 serves none."
        ),
    )
    timezone: str = Field(
        "Europe/Madrid",
        description="The clinic's IANA timezone: working hours and emails are in local time.",
    )
    doctors_file: str = Field(
        "",
        description="JSON file of doctors added at startup if missing (doctors.example.json).",
    )
    staff_tokens: str = Field(
        "",
        description=(
            "Comma-separated `name:token` pairs that open the staff endpoints; the name "
            f"goes into the audit log, the token (at least {MIN_TOKEN_LENGTH} characters) never."
        ),
    )
    log_level: str = Field("INFO", description="Log level of the clinic's own loggers.")
    log_format: LogFormat = Field(
        "text",
        description="Log lines as text, or as one JSON object per line (json) for log shippers.",
    )
    tracing: bool = Field(
        False,
        description=(
            "Send traces of every request and message over OTLP/HTTP (the OTEL_* variables "
            "configure it); needs the tracing extra."
        ),
    )
    dev_data_dir: str = Field(
        ".clinic-data",
        description="Where `clinic dev` keeps its embedded database and RabbitMQ node files.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {name!r}") from exc
        return name

    @property
    def zone(self) -> ZoneInfo:
        """The clinic's timezone."""
        return ZoneInfo(self.timezone)

    @property
    def trusted_proxy_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """The reverse proxies believed about the client's address."""
        return _networks(self.trusted_proxies)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_addresses(cls, value: str) -> str:
        _networks(value)  # ValueError names the entry: an address is no secret
        return value

    @property
    def staff_token_names(self) -> Mapping[str, str]:
        """Each staff token, and the name it goes by in the audit log."""
        return _names_by_token(self.staff_tokens)

    @field_validator("staff_tokens")
    @classmethod
    def _named_long_tokens(cls, value: str) -> str:
        _staff_pairs(value)
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
            raise ValueError("CLINIC_SMTP_URL must be smtp://[user:password@]host[:port]")
        if parts.query not in {"", "tls=off"} or (parts.query and parts.scheme == "smtps"):
            raise ValueError("CLINIC_SMTP_URL takes only ?tls=off, and only with smtp://")
        return value

    @field_validator("reminder_before", "min_notice", mode="before")
    @classmethod
    def _seconds_or_duration(cls, value: object) -> object:
        # A plain number is seconds, as every other duration here.
        if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
            return float(value)
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query:
            raise ValueError("CLINIC_PUBLIC_URL must be http(s)://host[:port][/path]")
        return value.rstrip("/")

    @field_validator("manage_token_key")
    @classmethod
    def _long_manage_token_key(cls, value: str) -> str:
        if value and len(value) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"CLINIC_MANAGE_TOKEN_KEY is shorter than {MIN_TOKEN_LENGTH} characters"
            )
        return value

    @model_validator(mode="after")
    def _email_from_with_smtp(self) -> "Settings":
        if self.smtp_url and "@" not in parseaddr(self.email_from)[1]:
            raise ValueError("CLINIC_SMTP_URL needs CLINIC_EMAIL_FROM, an address to send from")
        return self

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> "Settings":
        secrets = [token for _, token in _staff_pairs(self.staff_tokens)]
        secrets.append(self.manage_token_key)
        urls = (self.rabbit_url, self.mongo_url, self.smtp_url)
        secrets += [urlsplit(url).password or "" for url in urls]
        if any(secret.lower().startswith(PLACEHOLDER_PREFIX) for secret in secrets):
            raise ValueError(
                f"a secret still has the example value ({PLACEHOLDER_PREFIX}...): set real "
                "passwords and tokens in .env (see .env.example)"
            )
        return self

    @model_validator(mode="after")
    def _delays_are_ordered(self) -> "Settings":
        if self.confirm_delay_min > self.confirm_delay_max:
            raise ValueError("CLINIC_CONFIRM_DELAY_MIN must not exceed CLINIC_CONFIRM_DELAY_MAX")
        return self


settings = Settings()
