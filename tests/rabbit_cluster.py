"""Three RabbitMQ nodes clustered on loopback, behind HAProxy: a broker to lose nodes of.

The clinic's clients find a clustered broker through a TCP load balancer (HAProxy):
each node here has a frontend of its own that prefers that node and falls back to the
others (``backup`` servers) once health checks find it down. A client that loses its
node reconnects to the same address and lands on a live one. With ``failover=False``
each frontend reaches its own node only, so the tests can show what breaks without it.

Each node is a ``tests.private_broker.PrivateRabbit`` (its own name, ports and data)
on ports no outgoing connection can take; the shared broker on 5672 is never touched.
"""

import contextlib
import csv
import random
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from tests.private_broker import PrivateRabbit

SIZE = 3
CHECKS = "check inter 500ms fall 2 rise 2 on-marked-down shutdown-sessions"
"""A node is out after two failed checks half a second apart, and in after two good
ones; the sessions of a node marked out are cut, so their clients reconnect elsewhere."""
HAPROXY_CONFIG = """\
global
    stats socket {socket} mode 600 level admin

defaults
    mode tcp
    timeout connect 2s
    # A client whose node just died reconnects before the checks find it dead: its
    # connection is retried, a second apart, each time on a server chosen anew.
    retries 3
    option redispatch 1
    timeout check 1s
    # Longer than the AMQP heartbeat (60 s): HAProxy never cuts a healthy idle client.
    timeout client 3m
    timeout server 3m
"""


def spare_port() -> int:
    """A free local port below the range outgoing connections take their ports from: a
    node binds its ports late in its boot, and again when it restarts, and a port from
    that range could be taken meanwhile by a connection, so that the node would not start."""
    ranges = Path("/proc/sys/net/ipv4/ip_local_port_range")
    low = int(ranges.read_text().split()[0]) if ranges.exists() else 32768
    while True:
        port = random.randrange(10000, low)
        with socket.socket() as sock, contextlib.suppress(OSError):
            sock.bind(("127.0.0.1", port))
            return port


class RabbitCluster:
    """Three clustered nodes (numbered 1 to 3) and an HAProxy in front of them."""

    def __init__(self, failover: bool = True) -> None:
        self.failover = failover
        self.nodes = [PrivateRabbit(spare_port(), spare_port()) for _ in range(SIZE)]
        self.base = Path(tempfile.mkdtemp(prefix="clinic-haproxy-"))
        self.frontends = [spare_port() for _ in range(SIZE)]
        self.socket = self.base / "haproxy.sock"
        self.haproxy: subprocess.Popen[bytes] | None = None
        # Nodes cluster only with the same Erlang cookie; each reads it from its HOME,
        # which must hold it before the node's first start.
        cookie = secrets.token_hex(20)
        for node in self.nodes:
            path = node.base / ".erlang.cookie"
            path.write_text(cookie)
            path.chmod(0o400)

    def start(self, timeout: float = 90.0) -> None:
        """Boot the nodes, join nodes 2 and 3 to node 1, and start HAProxy once every
        node answers; everything is removed again if that fails."""
        try:
            for node in self.nodes:
                node.launch()  # in parallel: booting is most of the time this takes
            for node in self.nodes:
                node.ctl("wait", "--timeout", str(int(timeout)), str(node.pid_file))
            # One at a time: two nodes joining at once can abort each other's schema change.
            for node in self.nodes[1:]:
                node.ctl("stop_app")
                node.ctl("join_cluster", self.nodes[0].node)
                node.ctl("start_app")
            self.ctl("await_online_nodes", str(SIZE))
            self._start_haproxy()
            self.wait_for_servers(up=range(1, SIZE + 1), within=timeout)
        except BaseException as exc:
            self._explain(exc)
            self.remove()
            raise

    def _explain(self, exc: BaseException) -> None:
        """Add what the tools said and the ends of the nodes' logs, removed with them."""
        if isinstance(exc, subprocess.CalledProcessError):
            exc.add_note(f"it said: {exc.stdout}{exc.stderr}")
        for node in self.nodes:
            path = node.log.with_name(f"{node.node}.log")  # the node's own, not its output
            lines = path.read_text(errors="replace").splitlines() if path.exists() else []
            errors = [line for line in lines if "[error]" in line][:15] or lines[-15:]
            exc.add_note(f"{node.node} log:\n" + "\n".join(errors))

    def _start_haproxy(self) -> None:
        """Write HAProxy's configuration, a frontend per node, and start it."""
        config = HAPROXY_CONFIG.format(socket=self.socket)
        for number, port in enumerate(self.frontends, 1):
            config += f"\nlisten via_{number}\n    bind 127.0.0.1:{port}\n"
            # Its own node first; the others, in turn, only while it is down.
            for other in [(number + step - 1) % SIZE + 1 for step in range(SIZE)]:
                backup = " backup" if other != number else ""
                if backup and not self.failover:
                    continue
                server = self.nodes[other - 1]
                config += f"    server node{other} 127.0.0.1:{server.port} {CHECKS}{backup}\n"
        path = self.base / "haproxy.cfg"
        path.write_text(config)
        with (self.base / "haproxy.log").open("ab") as log:
            self.haproxy = subprocess.Popen(
                ["haproxy", "-db", "-f", str(path)], stdout=log, stderr=subprocess.STDOUT
            )

    def url_via(self, number: int) -> str:
        """The AMQP URL of the frontend that prefers node ``number``."""
        return f"amqp://guest:guest@127.0.0.1:{self.frontends[number - 1]}/"

    def node(self, number: int) -> PrivateRabbit:
        """Node ``number`` (1 to 3)."""
        return self.nodes[number - 1]

    def ctl(self, *args: str) -> str:
        """``rabbitmqctl`` against the first node that runs; its output."""
        return next(node for node in self.nodes if node.running).ctl(*args)

    def tool(self, number: int, tool: str, *args: str) -> str:
        """Another RabbitMQ command line tool (``rabbitmq-upgrade``...) against a node."""
        return self.node(number).tool(tool, *args)

    def leader_of(self, queue: str) -> int:
        """The number of the node leading the quorum queue ``queue``."""
        for line in self.ctl("list_queues", "name", "leader", "--no-table-headers").splitlines():
            name, _, leader = line.strip().partition("\t")
            if name == queue:
                return next(n for n, node in enumerate(self.nodes, 1) if node.node == leader)
        raise LookupError(f"no queue {queue}")

    def kill(self, number: int) -> None:
        """SIGKILL a node: its clients and its peers find out from closed sockets."""
        self.node(number).kill()

    def restart(self, number: int, timeout: float = 90.0) -> None:
        """Start a stopped or killed node again (same name and data: it rejoins the
        cluster); wait until the cluster counts it in, and HAProxy sends clients to it."""
        node = self.node(number)
        node.start(timeout)
        node.ctl("await_online_nodes", str(SIZE))
        self.wait_for_servers(up=[number], within=timeout)

    def stop_gracefully(self, number: int) -> None:
        """Stop a node as a rolling restart does: once every quorum queue can spare it."""
        self.tool(number, "rabbitmq-upgrade", "await_online_quorum_plus_one", "-t", "120")
        self.node(number).stop()

    def servers(self) -> dict[str, dict[str, str]]:
        """HAProxy's view, by frontend and server (``via_2/node3``): ``status`` (UP,
        DOWN...), ``scur`` (the clients it carries now) and the rest of ``show stat``."""
        with socket.socket(socket.AF_UNIX) as stats:
            stats.connect(str(self.socket))
            stats.sendall(b"show stat\n")
            text = b"".join(iter(lambda: stats.recv(65536), b"")).decode()
        rows = csv.DictReader(text.removeprefix("# ").splitlines())
        return {
            f"{row['pxname']}/{row['svname']}": row
            for row in rows
            if row["svname"] not in {"FRONTEND", "BACKEND"}
        }

    def sessions(self) -> dict[str, int]:
        """The clients HAProxy carries now, by frontend and server (``via_2/node3``), where
        it carries any."""
        carried = {key: int(row["scur"]) for key, row in self.servers().items()}
        return {key: count for key, count in carried.items() if count}

    def wait_for_sessions(self, expected: dict[str, int], within: float = 30.0) -> None:
        """Wait until HAProxy carries exactly the clients ``expected`` (see ``sessions``)."""
        deadline = time.monotonic() + within
        while (sessions := self.sessions()) != expected:
            assert time.monotonic() < deadline, f"HAProxy carries {sessions}, not {expected}"
            time.sleep(0.1)

    def wait_for_queues(self, names: Iterable[str], within: float = 30.0) -> None:
        """Wait until the queues ``names`` are declared."""
        wanted = set(names)
        deadline = time.monotonic() + within
        while not wanted <= set(self.ctl("list_queues", "name").split()):
            assert time.monotonic() < deadline, f"the queues {sorted(wanted)} are not declared"
            time.sleep(0.2)

    def wait_for_servers(self, up: Iterable[int], within: float = 30.0) -> None:
        """Wait until HAProxy's health checks find the nodes ``up`` UP, in every frontend."""
        wanted = {f"node{n}" for n in up}
        deadline = time.monotonic() + within
        states: dict[str, str] = {}
        while True:
            if self.haproxy is None or self.haproxy.poll() is not None:
                raise RuntimeError(f"HAProxy is not running (its log: {self.base}/haproxy.log)")
            with contextlib.suppress(OSError):  # its stats socket is not open yet
                states = {key: row["status"] for key, row in self.servers().items()}
            if states and all(
                state == "UP" for key, state in states.items() if key.split("/")[1] in wanted
            ):
                return
            assert time.monotonic() < deadline, f"HAProxy sees {states}, not {wanted} UP"
            time.sleep(0.1)

    def remove(self) -> None:
        """Stop HAProxy and every node, and delete their files."""
        if self.haproxy is not None:
            self.haproxy.kill()
            self.haproxy.wait()
            self.haproxy = None
        for node in self.nodes:
            node.kill()  # a clean shutdown would only slow the test down: nothing is kept
            node.remove()
        shutil.rmtree(self.base, ignore_errors=True)
