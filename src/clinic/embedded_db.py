"""The embedded MongoDB-compatible server, for `clinic dev`, the tests and the benchmarks.

It is SecantusDB (the ``demo`` extra), GPL-licensed: it is only ever run as a
separate process, never imported.
"""

import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

STOP_TIMEOUT = 15.0
"""Seconds the server gets to stop after SIGTERM before it is killed."""


EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
"""Where Linux keeps the range it takes outgoing connections' own ports from."""
PORTS_BELOW = 10_000
"""How many ports under that range ``free_port`` picks from."""
_handed_out: set[int] = set()


def free_port() -> int:
    """A local TCP port nobody listens on now, for a server about to be started on it.

    Picked below the range the kernel takes outgoing connections' ports from: a port
    the kernel hands out (binding port 0) may be taken by any connection, a client's
    to the broker say, before the server binds it. Never the same one twice in a process.
    """
    try:
        below = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        below = 32768  # Linux's default; other systems' ranges start higher
    for _ in range(1000):
        port = random.randrange(below - PORTS_BELOW, below)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # something listens there, or a closed connection still holds it
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {below - PORTS_BELOW}-{below - 1}")


class EmbeddedDatabase:
    """A SecantusDB server process keeping its files in ``storage``."""

    def __init__(
        self,
        storage: Path,
        port: int | None = None,
        log: Path | None = None,
        wrapper: Sequence[str] = (),
    ) -> None:
        self.storage = storage
        self.port = port or free_port()
        self.log = log
        # What the server runs under, if anything (a profiler, in the benchmarks).
        self.wrapper = list(wrapper)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its MongoDB URL (the server does not support retryable writes)."""
        return f"mongodb://127.0.0.1:{self.port}/?retryWrites=false"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it accepts connections.

        Raises FileNotFoundError when the server is not installed, and RuntimeError
        when it does not come up; a server that was started is stopped again.
        """
        beside = Path(sys.executable).parent / "secantusd-py"
        server = str(beside) if beside.exists() else shutil.which("secantusd-py")
        if server is None:
            raise FileNotFoundError("secantusd-py is not installed (pip install -e '.[demo]')")
        self.storage.mkdir(parents=True, exist_ok=True)
        command = [*self.wrapper, server, "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--storage-path", str(self.storage), "--log-level", "WARNING"]
        output = self.log.open("ab") if self.log else None
        try:
            # A process group of its own: a Ctrl-C in a terminal stops what uses the
            # database first, and the database only when it is stopped explicitly.
            self.process = subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT, process_group=0
            )
        finally:
            if output:
                output.close()
        try:
            self._wait_until_listening(timeout)
        except BaseException:  # including Ctrl-C, which does not reach its group
            self.stop()
            raise

    def _wait_until_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.running and time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the embedded database did not start on port {self.port}")

    def stop(self) -> None:
        """Stop the server; its data stays on disk."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
