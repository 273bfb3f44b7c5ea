"""The one place configuration is read: environment variables prefixed ``CLINIC_``."""

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the clinic, read from ``CLINIC_*`` environment variables (or ``.env``)."""

    model_config = SettingsConfigDict(env_prefix="CLINIC_", env_file=".env", extra="ignore")

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
    queue_type: Literal["classic", "quorum"] = Field(
        "classic",
        description="RabbitMQ queue type of the work, retry and parking queues (quorum: clusters).",
    )
    idempotency_ttl: float = Field(
        86400.0, gt=0, description="Seconds an Idempotency-Key of POST /book is remembered."
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
        "", description="Comma-separated bearer tokens that open the staff endpoints."
    )
    log_level: str = Field("INFO", description="Log level of the clinic's own loggers.")
    dev_data_dir: str = Field(
        ".clinic-data", description="Where `clinic dev` keeps its embedded database files."
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
    def staff_token_list(self) -> list[str]:
        """The staff tokens, without blanks."""
        return [token.strip() for token in self.staff_tokens.split(",") if token.strip()]

    @model_validator(mode="after")
    def _delays_are_ordered(self) -> "Settings":
        if self.confirm_delay_min > self.confirm_delay_max:
            raise ValueError("CLINIC_CONFIRM_DELAY_MIN must not exceed CLINIC_CONFIRM_DELAY_MAX")
        return self


settings = Settings()
