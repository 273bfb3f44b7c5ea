"""A RabbitMQ node of the tests' own, to restart and kill without disturbing anyone.

It runs the machine's RabbitMQ installation as a second node, with its own
name, ports, data and logs in a temporary directory; the shared broker on
5672 is never touched.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from pathlib import Path

from clinic.embedded_db import free_port

SERVER = "/usr/sbin/rabbitmq-server"


def available() -> bool:
    """Whether this machine can run a private node: RabbitMQ installed, and we are root."""
    return Path(SERVER).exists() and shutil.which("rabbitmqctl") is not None and os.geteuid() == 0


class PrivateRabbit:
    """One throwaway RabbitMQ node; ``url`` reaches its default vhost as guest."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="clinic-rabbit-"))
        self.port = free_port()
        self.node = f"clinic-test-{uuid.uuid4().hex[:8]}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.pid_file = self.base / "pid"
        for folder in ("mnesia", "log"):
            (self.base / folder).mkdir()
        # An env file of its own: the system one names the shared node.
        (self.base / "rabbitmq-env.conf").write_text("# private test node\n")
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\nloopback_users = none\n"
        )
        self.base.chmod(0o755)
        shutil.chown(self.base, "rabbitmq", "rabbitmq")
        for path in self.base.rglob("*"):
            shutil.chown(path, "rabbitmq", "rabbitmq")
        self.env = {
            **os.environ,
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.base / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
        }

    def ctl(self, *args: str) -> str:
        """``rabbitmqctl`` against this node; its output."""
        return subprocess.run(
            ["rabbitmqctl", "-n", self.node, "-q", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=90,
        ).stdout

    def start(self) -> None:
        """Start the node on its data directory and wait until it takes connections."""
        self.pid_file.unlink(missing_ok=True)
        subprocess.run([SERVER, "-detached"], env=self.env, check=True, timeout=60)
        self.ctl("wait", "--timeout", "60", str(self.pid_file))

    def stop(self) -> None:
        """Stop the node gracefully, waiting until its process is gone."""
        self.ctl("stop", str(self.pid_file))

    def kill(self) -> None:
        """kill -9 the node: no flush, no goodbye to its clients."""
        os.kill(int(self.pid_file.read_text().strip()), signal.SIGKILL)

    def remove(self) -> None:
        """Stop the node if it runs, and delete its data."""
        if self.pid_file.exists():
            try:
                self.stop()
            except subprocess.SubprocessError:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    self.kill()
        shutil.rmtree(self.base, ignore_errors=True)
