"""The real notification worker app, sending to the fault tests' mailbox file.

Run with ``faststream run tests.faulty_notification_worker:app``.
"""

from clinic.domain.emails import default_email_sender
from clinic.handlers.notifications import app
from tests.faults import CrashPoints, MailboxFile

assert app.broker is not None
app.broker.add_middleware(CrashPoints)
app.broker.provider.override(default_email_sender, MailboxFile)

__all__ = ["app"]
