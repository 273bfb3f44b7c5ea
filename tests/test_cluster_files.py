"""The three-node cluster's files (docker-compose.cluster.yml, HAProxy's configuration,
the nodes' start script): what can be checked without a Docker engine.

The failover itself, three real nodes behind a real HAProxy, is tests/test_cluster.py.
"""

import shutil
import subprocess
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.conftest import unavailable
from tests.test_containers import ROOT, _env_example, docker_compose_config

CLUSTER = ("docker-compose.yml", "docker-compose.cluster.yml")
NODES = ("rabbitmq", "rabbitmq-2", "rabbitmq-3")


@pytest.fixture(scope="module")
def merged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Both compose files as docker-compose merges them, with .env.example as the .env."""
    result = docker_compose_config(tmp_path_factory.mktemp("cluster"), files=CLUSTER)
    assert result.returncode == 0, result.stderr
    services: dict[str, Any] = yaml.safe_load(result.stdout)["services"]
    return services


def test_the_clinic_reaches_the_cluster_through_haproxy_on_quorum_queues(
    merged: dict[str, Any],
) -> None:
    nodes = merged["rabbitmq"]["environment"]
    for name in ("api", "booking-worker", "notification-worker"):
        environment = merged[name]["environment"]
        rabbit = urlsplit(environment["CLINIC_RABBIT_URL"])
        assert (rabbit.hostname, rabbit.port) == ("rabbitmq-lb", 5672), name
        # Still the clinic's own account, never the administrator's.
        assert rabbit.username == nodes["RABBITMQ_APP_USER"] != nodes["RABBITMQ_ADMIN_USER"]
        assert environment["CLINIC_QUEUE_TYPE"] == "quorum", name
        assert "rabbitmq-lb" in merged[name]["depends_on"], name


def test_three_nodes_share_one_cookie_and_keep_their_own_data(merged: dict[str, Any]) -> None:
    cookies = {merged[node]["environment"]["RABBITMQ_CLUSTER_COOKIE"] for node in NODES}
    assert cookies == {_env_example()["RABBITMQ_CLUSTER_COOKIE"]}
    # The node's name, and so where it finds its data, comes from its hostname.
    assert [merged[node]["hostname"] for node in NODES] == list(NODES)
    data = {
        volume.split(":")[0]
        for node in NODES
        for volume in _volumes(merged[node])
        if volume.split(":")[1] == "/var/lib/rabbitmq"
    }
    assert len(data) == 3, data
    for node in NODES:
        assert merged[node]["entrypoint"] == ["sh", "/etc/rabbitmq/clinic/start-node.sh"]
    # The joining nodes start once the first is up, so the three form one cluster.
    for node in NODES[1:]:
        assert merged[node]["depends_on"] == {"rabbitmq": {"condition": "service_healthy"}}
        assert any("cluster.conf:" in volume for volume in _volumes(merged[node])), node
    assert not any("cluster.conf:" in volume for volume in _volumes(merged["rabbitmq"]))


def test_the_nodes_refuse_the_example_cookie() -> None:
    script = (ROOT / "deploy/rabbitmq/start-node.sh").read_text()
    assert _env_example()["RABBITMQ_CLUSTER_COOKIE"].startswith("change-me")
    assert "change-me*" in script
    assert 'chmod 400 "$cookie"' in script


def test_haproxy_accepts_its_configuration_and_checks_every_node() -> None:
    if shutil.which("haproxy") is None:
        unavailable("haproxy is not installed (apt-get install haproxy)")
    config = ROOT / "deploy/haproxy/haproxy.cfg"
    result = subprocess.run(
        ["haproxy", "-c", "-f", str(config)], capture_output=True, text=True, check=False
    )
    # Outside compose the node names do not resolve: warned about, and still valid.
    assert result.returncode == 0, result.stdout + result.stderr
    text = config.read_text()
    for node in NODES:
        assert f"server {node} {node}:5672 check" in text
    assert "on-marked-down shutdown-sessions" in text


def _volumes(service: dict[str, Any]) -> list[str]:
    """The service's volumes as ``source:target[:mode]``."""
    return [str(volume) for volume in service.get("volumes", [])]
