"""An SMTP server that keeps every email it receives as a file: ``clinic dev``'s inbox.

Each email is one ``.eml`` file in the folder, written whole (to a hidden name,
then renamed) before the server answers 250, so a file is never half an email.
It accepts everything, with no TLS and no login, on loopback only by default: it
is for one developer's machine, never a server.

Run on its own with ``python -m clinic.mail.dev_inbox --port 1025 --folder mail``.
"""

import argparse
import signal
import threading
import time
import uuid
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class SaveToFolder:
    """aiosmtpd handler: each email received becomes one file in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        content = envelope.original_content or b""
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        partial = self.folder / f".{name}.partial"
        partial.write_bytes(content)
        partial.rename(self.folder / name)
        return "250 Message accepted for delivery"


class DevInbox:
    """The inbox's SMTP server, in a thread of this process; ``url`` is its CLINIC_SMTP_URL."""

    def __init__(
        self, folder: Path, port: int, host: str = "127.0.0.1", handler: SaveToFolder | None = None
    ) -> None:
        self.folder = folder
        self.url = f"smtp://{host}:{port}?tls=off"
        # SMTPUTF8, as Mailpit and most providers offer: the API takes international
        # addresses (josé@ejemplo.es), which only SMTPUTF8 can carry.
        self._controller = Controller(
            handler or SaveToFolder(folder), hostname=host, port=port, enable_SMTPUTF8=True
        )

    def start(self) -> None:
        """Listen; return once the server answers."""
        self._controller.start()

    def stop(self) -> None:
        """Stop listening; what was received stays in the folder."""
        self._controller.stop()


def main() -> None:
    """Run the inbox until SIGTERM or Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--folder", type=Path, default=Path("mail"))
    args = parser.parse_args()
    inbox = DevInbox(args.folder, args.port, args.host)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    inbox.start()
    print(f"inbox listening at {inbox.url}, keeping emails in {args.folder}", flush=True)
    stop.wait()
    inbox.stop()


if __name__ == "__main__":
    main()
