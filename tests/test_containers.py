"""The container files: what can be checked without a Docker engine.

The services' command lines themselves run as processes in test_processes.py.
"""

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

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
    assert "3000:3000" in services["api"]["ports"]
    for worker in ("booking-worker", "notification-worker"):
        assert services[worker]["restart"] == "always"
        # Scaling (--scale booking-worker=3) needs no fixed name and no host port.
        assert "container_name" not in services[worker]
        assert "ports" not in services[worker]


def test_compose_waits_for_healthy_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("rabbitmq", "mongo", "api"):
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
    assert "${RABBITMQ_USER:?" in text
    assert "${RABBITMQ_PASSWORD:?" in text


def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    if shutil.which("docker-compose") is None:
        unavailable("docker-compose is not installed (apt-get install docker-compose)")
    env_file = tmp_path / ".env"
    env_file.write_text((ROOT / ".env.example").read_text())
    result = subprocess.run(
        [
            "docker-compose",
            "--env-file",
            str(env_file),
            "-f",
            str(ROOT / "docker-compose.yml"),
            "config",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
