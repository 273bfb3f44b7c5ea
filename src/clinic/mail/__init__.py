"""Email leaving the clinic: what one email is, and the ways it is delivered.

``clinic.domain.emails`` decides what an email says and that it is sent once;
this package only carries it out: to the log, or to an SMTP server
(``clinic.mail.smtp``). ``clinic.mail.dev_inbox`` is the SMTP server of
``clinic dev``, which keeps what it receives in a folder.
"""

from clinic.mail.outgoing import Email, EmailRefused, EmailSender, LogEmailSender

__all__ = ["Email", "EmailRefused", "EmailSender", "LogEmailSender"]
