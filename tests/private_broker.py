"""A RabbitMQ node of the tests' own, to restart and kill without disturbing anyone.

It is ``clinic.embedded_broker``'s node (the one `clinic dev` starts) in a
temporary directory, with a name of its own; the shared broker on 5672 is never
touched.
"""

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from clinic.embedded_broker import EmbeddedBroker, find_server


def available() -> bool:
    """Whether this machine can run a private node: RabbitMQ installed, and we are root.

    Root, because some tests hand files to the rabbitmq user, as its service would own them.
    """
    server = find_server()
    return server is not None and (server.parent / "rabbitmqctl").exists() and os.geteuid() == 0


class PrivateRabbit(EmbeddedBroker):
    """One throwaway RabbitMQ node; ``url`` reaches its default vhost as guest.

    Its AMQP and Erlang distribution ports are ``port`` and ``dist_port`` when given,
    else free ports the kernel picks.
    """

    def __init__(self, port: int | None = None, dist_port: int | None = None) -> None:
        server = find_server()
        assert server is not None, "RabbitMQ is not installed (see available())"
        base = Path(tempfile.mkdtemp(prefix="clinic-rabbit-"))
        super().__init__(base, f"clinic-test-{uuid.uuid4().hex[:8]}@localhost", server, port)
        if dist_port is not None:
            self.env["RABBITMQ_DIST_PORT"] = str(dist_port)

    def ctl(self, *args: str) -> str:
        """``rabbitmqctl`` against this node; its output."""
        return self.tool("rabbitmqctl", *args)

    def tool(self, tool: str, *args: str) -> str:
        """A RabbitMQ command line tool (``rabbitmqctl``, ``rabbitmq-upgrade``...) against
        this node; its output."""
        return subprocess.run(
            [str(self.server.parent / tool), "-n", self.node, "-q", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout

    def start(self, timeout: float = 60.0) -> None:
        """Start the node and wait until it has booted.

        Waited for with ``rabbitmqctl wait``, not by logging in: some tests boot it
        with accounts of their own, and no guest.
        """
        self.launch()
        try:
            self.ctl("wait", "--timeout", str(int(timeout)), str(self.pid_file))
        except BaseException:
            self.stop()
            raise

    def remove(self) -> None:
        """Stop the node if it runs, and delete its data."""
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
