"""The real notification worker app, sending to the fault tests' mailbox file.

Run with ``faststream run tests.faulty_notification_worker:app``.
"""

from clinic.emails import default_email_sender
from clinic.handlers.notifications import app
from clinic.topology import broker
from tests.faults import CrashPoints, MailboxFile

broker.add_middleware(CrashPoints)
broker.provider.override(default_email_sender, MailboxFile)

__all__ = ["app"]
