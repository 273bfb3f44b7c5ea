"""A RabbitMQ node of the clinic's own, for `clinic dev` and the tests.

It runs this machine's RabbitMQ installation (``rabbitmq-server`` on the PATH) as a
node of its own, as the current user: its name, ports, configuration, data, logs and
Erlang cookie all live in one folder, so a broker already running here is never touched.
"""

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import aiormq

from clinic.embedded_db import free_port

STOP_TIMEOUT = 60.0
"""Seconds the node gets to shut down cleanly after SIGTERM before it is killed."""
ANSWER_TIMEOUT = 3.0
"""Seconds a broker gets to take a connection before it counts as not answering."""


class BrokerRefusedError(ConnectionError):
    """Something listens at the broker's address, but it refused the clinic's login."""


def broker_answers(url: str, timeout: float = ANSWER_TIMEOUT) -> bool:
    """Whether a broker takes the clinic's login at ``url``; False when nothing listens there.

    Raises BrokerRefusedError when something accepts the connection but does not log the
    clinic in (a wrong password or vhost, or no AMQP broker at all).
    """
    parts = urlsplit(url)
    default_port = 5671 if parts.scheme == "amqps" else 5672
    try:
        with socket.create_connection((parts.hostname or "", parts.port or default_port), timeout):
            pass
    except OSError:
        return False

    async def log_in() -> None:
        connection = await asyncio.wait_for(aiormq.connect(url), timeout)
        await connection.close()

    # A loop of its own, in a thread: callers may be inside a running loop (async tests).
    with ThreadPoolExecutor(1) as pool:
        try:
            pool.submit(asyncio.run, log_in()).result()
        except (Exception, asyncio.CancelledError) as exc:
            raise BrokerRefusedError(str(exc) or type(exc).__name__) from exc
    return True


def find_server() -> Path | None:
    """The ``rabbitmq-server`` script to run as the current user; None if it is not on the PATH."""
    found = shutil.which("rabbitmq-server")
    if found is None:
        return None
    script = Path(found).resolve()
    # Some packages (Debian's) install a wrapper that only runs the server as the
    # rabbitmq user; the server's own script is beside it.
    if script.name != "rabbitmq-server":
        script = (script.parent / "rabbitmq-server").resolve()
    return script if script.is_file() else None


class EmbeddedBroker:
    """A RabbitMQ node keeping everything in ``base``; ``url`` reaches its default vhost.

    ``node`` is its Erlang node name: a node finds its data again only under the
    same name. The configuration is written here, so a caller may extend it before
    ``start``.
    """

    def __init__(self, base: Path, node: str, server: Path, port: int | None = None) -> None:
        self.base, self.node, self.server = base, node, server
        self.port = port or free_port()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.pid_file = base / "pid"
        self.log = base / "log" / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        for folder in ("mnesia", "log"):
            (base / folder).mkdir(parents=True, exist_ok=True)
        # An env file of its own: the system's may name the machine's broker.
        (base / "rabbitmq-env.conf").write_text("# this node's settings are in its environment\n")
        (base / "enabled_plugins").write_text("[].\n")
        (base / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{self.port}\n")
        self.env = {
            **os.environ,
            # The Erlang cookie is read from (or created in) HOME: this node's own.
            "HOME": str(base),
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_NODENAME": node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
        }

    @property
    def running(self) -> bool:
        """Whether the node's process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 60.0) -> None:
        """Start the node and wait until it takes connections (see ``wait_until_ready``)."""
        self.launch()
        self.wait_until_ready(timeout)

    def launch(self) -> None:
        """Start the node's process, without waiting for it to boot."""
        self.pid_file.unlink(missing_ok=True)
        with self.log.open("ab") as output:
            # A process group of its own: a Ctrl-C in a terminal stops what uses the
            # broker first, and the broker only when it is stopped explicitly.
            self.process = subprocess.Popen(
                [str(self.server)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                process_group=0,
            )

    def wait_until_ready(self, timeout: float) -> None:
        """Wait until the node logs the clinic in.

        Raises RuntimeError, naming its log, when it does not in time; the node is
        stopped again, as it is on any other exception (Ctrl-C included).
        """
        deadline = time.monotonic() + timeout
        try:
            while self.running and time.monotonic() < deadline:
                try:
                    if broker_answers(self.url):
                        return
                except BrokerRefusedError:
                    pass  # the listener opens as the boot ends: one more moment
                time.sleep(0.2)
        except BaseException:
            self.stop()
            raise
        self.stop()
        raise RuntimeError(f"the RabbitMQ node did not start (its log: {self.log})")

    def stop(self) -> None:
        """Shut the node down cleanly, keeping its data; return once its processes are gone."""
        if self.process is None:
            return
        # The server script hands SIGTERM on to the node, which shuts down as on
        # `rabbitmqctl stop`, and exits when the node has.
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None

    def kill(self) -> None:
        """SIGKILL the node's processes: no flush, no goodbye to its clients."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None
