"""The container files: what can be checked without a Docker engine.

The services' command lines themselves run as processes in test_processes.py.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from clinic.settings import Settings
from tests.conftest import unavailable
from tests.processes import BIN

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_dockerfile_passes_hadolint() -> None:
    hadolint = BIN / "hadolint"
    if not hadolint.exists():
        hadolint = Path(shutil.which("hadolint") or "hadolint")
    result = subprocess.run(
        [str(hadolint), str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_runs_as_a_non_root_user() -> None:
    users = [
        line.split()[1]
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("USER ")
    ]
    assert users, "the image sets no USER"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_compose_has_the_services_of_the_original_design(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"rabbitmq", "mongo", "api", "booking-worker", "notification-worker"} <= set(services)
    assert "management" in services["rabbitmq"]["image"]
    # Without a fixed hostname a recreated broker container starts with no queues.
    assert services["rabbitmq"]["hostname"] == "rabbitmq"
    assert "3000:3000" in services["api"]["ports"]
    for worker in ("booking-worker", "notification-worker"):
        assert services[worker]["restart"] == "always"
        # Scaling (--scale booking-worker=3) needs no fixed name and no host port.
        assert "container_name" not in services[worker]
        assert "ports" not in services[worker]


def test_compose_waits_for_healthy_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("rabbitmq", "mongo", "api", "booking-worker", "notification-worker"):
        assert services[name]["healthcheck"]["test"], name
    for name in ("api", "booking-worker", "notification-worker"):
        depends = services[name]["depends_on"]
        assert {dep: spec["condition"] for dep, spec in depends.items()} == {
            "rabbitmq": "service_healthy",
            "mongo": "service_healthy",
        }
    volumes = set(compose["volumes"])
    assert {"rabbitmq-data", "mongo-data"} <= volumes


def test_compose_has_no_default_guest_credentials() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert "guest" not in text
    for account in ("RABBITMQ_ADMIN", "RABBITMQ_APP", "MONGO_APP"):
        assert f"${{{account}_USER:?" in text
        assert f"${{{account}_PASSWORD:?" in text
    assert "${MONGO_INITDB_ROOT_USERNAME:?" in text
    assert "${MONGO_INITDB_ROOT_PASSWORD:?" in text


def test_the_management_ui_listens_on_the_hosts_loopback_only(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["rabbitmq"]["ports"] == ["127.0.0.1:15672:15672"]
    # Nothing else of the broker's or the database's reaches the host's network.
    assert "ports" not in services["mongo"]
    published = {name for name, service in services.items() if "ports" in service}
    assert published == {"rabbitmq", "api", "mailpit", "prometheus", "grafana"}
    # The mail catcher's inbox (patients' names) and the metrics profile's UIs, like
    # the management UI, on the host's loopback only; Mailpit's SMTP port on no host port.
    assert services["mailpit"]["ports"] == ["127.0.0.1:8025:8025"]
    for name in ("prometheus", "grafana"):
        assert all(port.startswith("127.0.0.1:") for port in services[name]["ports"]), name


def test_the_app_uses_the_brokers_least_privileged_account(compose: dict[str, Any]) -> None:
    rabbit_url = compose["x-clinic-env"]["CLINIC_RABBIT_URL"]
    assert rabbit_url.startswith("amqp://${RABBITMQ_APP_USER:?")
    assert "${RABBITMQ_APP_PASSWORD:?" in rabbit_url
    assert "ADMIN" not in rabbit_url
    template = json.loads((ROOT / "deploy/rabbitmq/definitions.template.json").read_text())
    tags = {user["name"]: user["tags"] for user in template["users"]}
    assert tags == {"@RABBITMQ_ADMIN_USER@": ["administrator"], "@RABBITMQ_APP_USER@": []}
    [app] = [p for p in template["permissions"] if p["user"] == "@RABBITMQ_APP_USER@"]
    for kind in ("configure", "write", "read"):
        # Anchored lists of names (tests/test_broker_accounts.py checks them on a broker).
        assert re.fullmatch(r"\^\(.+\)\$", app[kind]), kind
    # The broker's service makes the accounts from .env and imports them at boot.
    rabbitmq = compose["services"]["rabbitmq"]
    assert rabbitmq["environment"] == compose["x-rabbit-accounts"]
    assert rabbitmq["entrypoint"] == ["sh", "/etc/rabbitmq/clinic/start-node.sh"]
    assert "render-definitions.sh" in (ROOT / "deploy/rabbitmq/start-node.sh").read_text()
    assert (
        "./deploy/rabbitmq/clinic.conf:/etc/rabbitmq/conf.d/30-clinic.conf:ro"
        in (rabbitmq["volumes"])
    )


def test_mongo_requires_authentication_and_the_app_signs_in(compose: dict[str, Any]) -> None:
    mongo = compose["services"]["mongo"]
    environment = mongo["environment"]
    assert environment["MONGO_INITDB_ROOT_USERNAME"].startswith("${MONGO_INITDB_ROOT_USERNAME:?")
    assert environment["MONGO_INITDB_ROOT_PASSWORD"].startswith("${MONGO_INITDB_ROOT_PASSWORD:?")
    assert (
        "./deploy/mongo/create-app-user.js:/docker-entrypoint-initdb.d/create-app-user.js:ro"
        in mongo["volumes"]
    )
    mongo_url = compose["x-clinic-env"]["CLINIC_MONGO_URL"]
    assert mongo_url.startswith("mongodb://${MONGO_APP_USER:?")
    assert "${MONGO_APP_PASSWORD:?" in mongo_url
    assert "ROOT" not in mongo_url
    # The healthcheck signs in as the app, so it passes only once the app could.
    assert ".auth(process.env.MONGO_APP_USER, process.env.MONGO_APP_PASSWORD)" in " ".join(
        mongo["healthcheck"]["test"]
    )


def test_the_mongo_init_script_grants_the_app_its_database_only(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        unavailable("Node.js is needed to run the MongoDB init script (apt-get install nodejs)")
    # The script as mongosh runs it, with a stand-in for its `db` that records the call.
    harness = tmp_path / "harness.js"
    harness.write_text(
        "const fs = require('fs');\n"
        "const calls = [];\n"
        "globalThis.db = { getSiblingDB: (name) => ({ createUser: (spec) => calls.push("
        "{ name, spec }) }) };\n"
        f"eval(fs.readFileSync({json.dumps(str(ROOT / 'deploy/mongo/create-app-user.js'))},"
        " 'utf8'));\n"
        "console.log(JSON.stringify(calls));\n"
    )
    env = {"PATH": "/usr/bin:/bin", "MONGO_APP_USER": "app", "MONGO_APP_PASSWORD": "secret"}
    result = subprocess.run(
        [node, str(harness)],
        env=env | {"CLINIC_MONGO_DB": "clinic_db"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {
            "name": "admin",
            "spec": {
                "user": "app",
                "pwd": "secret",
                "roles": [{"role": "readWrite", "db": "clinic_db"}],
            },
        }
    ]
    missing = subprocess.run([node, str(harness)], env={"PATH": "/usr/bin:/bin"}, check=False)
    assert missing.returncode != 0


def test_workers_report_their_health_from_their_ready_endpoint(compose: dict[str, Any]) -> None:
    for worker in ("booking-worker", "notification-worker"):
        service = compose["services"][worker]
        check = service["healthcheck"]["test"]
        assert check[:3] == ["CMD", "python", "-c"]
        assert "http://127.0.0.1:8001/ready" in check[3]
        # Reachable by Prometheus on the compose network, and on no host port.
        assert service["environment"]["CLINIC_WORKER_HTTP_HOST"] == "0.0.0.0"
        assert str(service["environment"]["CLINIC_WORKER_HTTP_PORT"]) == "8001"  # as checked


def test_the_metrics_profile_scrapes_every_clinic_process(compose: dict[str, Any]) -> None:
    services = compose["services"]
    # Optional: a plain `docker compose up` starts neither.
    assert services["prometheus"]["profiles"] == ["metrics"]
    assert services["grafana"]["profiles"] == ["metrics"]
    for name in ("prometheus", "grafana"):
        _, _, tag = services[name]["image"].partition(":")
        assert tag, f"{name}'s image is not pinned"
        assert tag != "latest", name
    mounted = {volume.split(":")[0]: volume for volume in services["prometheus"]["volumes"]}
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    assert "./deploy/prometheus/prometheus.yml" in mounted
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["api"]["static_configs"] == [{"targets": ["api:3000"]}]
    for worker in ("booking-worker", "notification-worker"):
        # Every replica: DNS has one A record per container of a scaled service.
        assert jobs[worker]["dns_sd_configs"] == [
            {"names": [worker], "type": "A", "port": 8001, "refresh_interval": "30s"}
        ]
    for job in jobs.values():
        for target in (t for c in job.get("static_configs", []) for t in c["targets"]):
            assert target.split(":")[0] in services, target
        for sd in job.get("dns_sd_configs", []):
            assert set(sd["names"]) <= set(services), sd["names"]


def test_the_dashboard_shows_every_figure_of_the_metrics() -> None:
    dashboard = json.loads((ROOT / "deploy/grafana/clinic-dashboard.json").read_text())
    queries = " ".join(
        target["expr"] for panel in dashboard["panels"] for target in panel["targets"]
    )
    for metric in (
        "clinic_http_requests_total",
        "clinic_http_request_duration_seconds_bucket",
        "clinic_received_messages_total",
        "clinic_received_processed_messages_total",
        "clinic_received_processed_messages_duration_seconds_bucket",
        "clinic_messages_parked_total",
        "clinic_messages_retried_total",
        "clinic_published_messages_total",
        "clinic_published_messages_exceptions_total",
        "clinic_bookings_total",
        "clinic_emails_total",
        "clinic_outbox_oldest_unsent_seconds",
        "clinic_pending_bookings",
    ):
        assert metric in queries, metric
    # Provisioned from the data source Grafana is given (deploy/grafana/provisioning).
    sources = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    [source] = sources["datasources"]
    assert source["url"] == "http://prometheus:9090"
    uids = {panel["datasource"]["uid"] for panel in dashboard["panels"]}
    assert uids == {source["uid"]}


def _env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    pairs = (line.partition("=") for line in lines if line and not line.startswith("#"))
    return {name: value for name, _, value in pairs}


def test_env_example_secrets_are_placeholders_the_app_refuses() -> None:
    env = _env_example()
    secrets = {name: value for name, value in env.items() if name.endswith("PASSWORD")}
    assert set(secrets) == {
        "RABBITMQ_ADMIN_PASSWORD",
        "RABBITMQ_APP_PASSWORD",
        "MONGO_INITDB_ROOT_PASSWORD",
        "MONGO_APP_PASSWORD",
        "GRAFANA_ADMIN_PASSWORD",
    }
    for name, value in secrets.items():
        assert value.startswith("change-me"), name
    tokens = [entry.split(":", 1) for entry in env["CLINIC_STAFF_TOKENS"].split(",")]
    assert tokens
    for staff_name, token in tokens:
        assert staff_name
        assert token.startswith("change-me"), staff_name
    # The app's accounts are not the administrators'.
    assert env["RABBITMQ_APP_USER"] != env["RABBITMQ_ADMIN_USER"]
    assert env["MONGO_APP_USER"] != env["MONGO_INITDB_ROOT_USERNAME"]


def docker_compose_config(
    tmp_path: Path,
    *options: str,
    profile: str | None = None,
    files: tuple[str, ...] = ("docker-compose.yml",),
) -> subprocess.CompletedProcess[str]:
    """``docker-compose config`` of ``files`` with .env.example as the .env."""
    if shutil.which("docker-compose") is None:
        unavailable("docker-compose is not installed (apt-get install docker-compose)")
    env_file = tmp_path / ".env"
    env_file.write_text((ROOT / ".env.example").read_text())
    profiles = ["--profile", profile] if profile else []
    named = [argument for file in files for argument in ("-f", str(ROOT / file))]
    return subprocess.run(
        ["docker-compose", "--env-file", str(env_file), *profiles, *named, "config", *options],
        capture_output=True,
        text=True,
        check=False,
    )


def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    result = docker_compose_config(tmp_path, "--quiet")
    assert result.returncode == 0, result.stderr


def test_docker_compose_accepts_the_metrics_profile(tmp_path: Path) -> None:
    result = docker_compose_config(tmp_path, profile="metrics")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    # As docker-compose resolved them: the profile kept, the workers' address set.
    assert services["prometheus"]["profiles"] == ["metrics"]
    assert services["grafana"]["profiles"] == ["metrics"]
    for worker in ("booking-worker", "notification-worker"):
        assert services[worker]["environment"]["CLINIC_WORKER_HTTP_HOST"] == "0.0.0.0"
        assert "CLINIC_RABBIT_URL" in services[worker]["environment"]


def test_the_clinics_emails_go_to_mailpit_unless_env_names_a_relay(tmp_path: Path) -> None:
    result = docker_compose_config(tmp_path)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    for name in ("api", "booking-worker", "notification-worker"):
        environment = services[name]["environment"]
        assert environment["CLINIC_SMTP_URL"] == "smtp://mailpit:1025?tls=off"
        # What the clinic's settings take: a URL it can parse, and a From.
        sender = environment["CLINIC_EMAIL_FROM"]
        assert Settings(smtp_url=environment["CLINIC_SMTP_URL"], email_from=sender).smtp_url
    _, _, tag = services["mailpit"]["image"].partition(":")
    assert tag not in {"", "latest"}


def test_with_the_example_env_the_app_signs_in_as_its_own_accounts(tmp_path: Path) -> None:
    result = docker_compose_config(tmp_path)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    brokers = services["rabbitmq"]["environment"]
    databases = services["mongo"]["environment"]
    for name in ("api", "booking-worker", "notification-worker"):
        environment = services[name]["environment"]
        rabbit = urlsplit(environment["CLINIC_RABBIT_URL"])
        assert rabbit.username == brokers["RABBITMQ_APP_USER"] != brokers["RABBITMQ_ADMIN_USER"]
        assert rabbit.password == brokers["RABBITMQ_APP_PASSWORD"]
        mongo = urlsplit(environment["CLINIC_MONGO_URL"])
        assert mongo.username == databases["MONGO_APP_USER"]
        assert mongo.password == databases["MONGO_APP_PASSWORD"]
