"""Small rules with no services behind them: retry counting, masking, settings."""

import logging
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from clinic.logs import MaskedFormatter
from clinic.messages import BookingStatusChanged
from clinic.messaging.retries import failed_attempts
from clinic.redaction import error_summary, mask_email, mask_emails
from clinic.settings import Settings


def test_failed_attempts_count_only_this_queues_rejections() -> None:
    headers = {
        "x-death": [
            {"queue": "booking_requests", "reason": "rejected", "count": 2},
            {"queue": "booking_retry", "reason": "expired", "count": 2},
            {"queue": "email_notifications", "reason": "rejected", "count": 5},
        ]
    }
    assert failed_attempts(headers, "booking_requests") == 2
    assert failed_attempts(headers, "email_notifications") == 5
    assert failed_attempts({}, "booking_requests") == 0
    assert failed_attempts(None, "booking_requests") == 0


@pytest.mark.parametrize(
    ("email", "masked"),
    [("juan@example.com", "j***@example.com"), ("a@b.es", "a***@b.es"), ("broken", "***")],
)
def test_emails_are_masked_for_logs(email: str, masked: str) -> None:
    assert mask_email(email) == masked


def test_confirmation_delays_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match="CLINIC_CONFIRM_DELAY_MIN"):
        Settings(confirm_delay_min=5, confirm_delay_max=2)


def test_every_setting_is_documented_and_passed_through_by_compose() -> None:
    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    compose = (root / "docker-compose.yml").read_text()
    for name in Settings.model_fields:
        variable = f"CLINIC_{name.upper()}"
        assert f"| `{variable}` |" in readme, f"{variable} is missing from the README's table"
        if name != "dev_data_dir":  # only `clinic dev` reads it
            assert f"{variable}:" in compose, f"{variable} is not passed through by compose"


def test_queue_type_takes_only_what_rabbitmq_offers() -> None:
    assert Settings(queue_type="quorum").queue_type == "quorum"
    with pytest.raises(ValidationError, match="queue_type"):
        Settings(queue_type="stream")


def _formatted(msg: str, args: tuple[object, ...], exc: BaseException | None = None) -> str:
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, msg, args, exc_info)
    record.booking_id = "-"
    return MaskedFormatter().format(record)


def test_log_lines_never_show_a_full_email() -> None:
    line = _formatted(
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/bookings?patientEmail=juan.perez%40example.com", "1.1", 200),
    )
    assert "juan.perez" not in line
    assert "patientEmail=j***@example.com" in line


def test_tracebacks_are_masked_too() -> None:
    try:
        raise ValueError("duplicate key: {'patient_email': 'juan.perez@example.com'}")
    except ValueError as exc:
        line = _formatted("insert failed", (), exc)
    assert "Traceback" in line
    assert "juan.perez" not in line
    assert "j***@example.com" in line


def test_long_messages_are_cut_and_masked_in_linear_time() -> None:
    # A backtracking pattern takes minutes on this; a scan takes milliseconds.
    hostile = "a" * 1_000_000
    started = time.monotonic()
    assert mask_emails(hostile) == hostile
    assert mask_emails(hostile + "@example.com").endswith("***@example.com")
    line = _formatted("GET %s", ("/health?q=" + hostile,))
    assert time.monotonic() - started < 1
    assert len(line) < 2200
    assert line.endswith("[998014 more characters]")


def test_parking_reasons_do_not_quote_patient_data() -> None:
    try:
        BookingStatusChanged.model_validate({"patientName": "José Ñúñez", "bookingId": 7})
    except ValidationError as exc:
        reason = error_summary(exc)
    assert reason.startswith("ValidationError: ")
    assert "Ñúñez" not in reason
    assert "bookingId" in reason or "booking_id" in reason


LONG = "x" * 40


@pytest.mark.parametrize(
    ("tokens", "problem"),
    [
        (f"reception{LONG}", "is not written as name:token"),
        ("reception:short-token", "shorter than 32 characters"),
        (f"reception:{LONG},:{LONG}", "staff token 2 is not written as name:token"),
        ("reception:change-me-staff-token-0123456789abcdef", "example value"),
    ],
)
def test_unfit_staff_tokens_are_refused_without_printing_them(tokens: str, problem: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(staff_tokens=tokens)
    assert problem in str(refused.value)
    for secret in (LONG, "short-token", "change-me-staff-token"):
        assert secret not in str(refused.value)


@pytest.mark.parametrize(
    "setting",
    [
        {"rabbit_url": "amqp://clinic:change-me-rabbit@rabbitmq:5672/"},
        {"mongo_url": "mongodb://clinic:CHANGE-ME-mongo@mongo:27017/clinic"},
    ],
)
def test_example_passwords_are_refused_at_startup(setting: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="example value") as refused:
        Settings(**setting)  # type: ignore[arg-type]
    for password in ("change-me-rabbit", "CHANGE-ME-mongo"):
        assert password not in str(refused.value)


def test_every_secret_in_the_env_example_is_refused() -> None:
    example = (Path(__file__).resolve().parent.parent / ".env.example").read_text()
    secrets = [
        line.split("=", 1)[1]
        for line in example.splitlines()
        if not line.startswith("#")
        and any(kind in line for kind in ("PASSWORD=", "TOKENS=", "KEY="))
    ]
    assert secrets
    for secret in secrets:
        tokens = secret if ":" in secret else f"name:{secret}"
        with pytest.raises(ValidationError, match=r"example value|shorter"):
            Settings(staff_tokens=tokens)


@pytest.mark.parametrize(
    ("key", "problem"),
    [("short-key", "shorter than 32 characters"), (f"change-me-{LONG}", "example value")],
)
def test_an_unfit_manage_token_key_is_refused_without_printing_it(key: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem) as refused:
        Settings(manage_token_key=key)
    assert key not in str(refused.value)


@pytest.mark.parametrize("url", ["citas.clinica.example", "ftp://clinica.example", "https://"])
def test_the_public_url_must_be_a_web_address(url: str) -> None:
    with pytest.raises(ValidationError, match="CLINIC_PUBLIC_URL"):
        Settings(public_url=url)


def test_staff_tokens_are_known_by_their_names() -> None:
    named = Settings(staff_tokens=f" reception:{LONG}a , records:{LONG}b ").staff_token_names
    assert named == {f"{LONG}a": "reception", f"{LONG}b": "records"}
