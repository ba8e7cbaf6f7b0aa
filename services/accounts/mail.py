"""Outgoing mail (email verification) over SMTP, as the `smtp_*` settings say. Blocking: run in a thread."""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage

from services.accounts.config import AccountsSettings

log = logging.getLogger(__name__)


class Mailer:
    def __init__(self, settings: AccountsSettings):
        self._s = settings

    def send(self, to: str, subject: str, body: str) -> None:
        """Sends one plain-text mail; raises OSError / smtplib.SMTPException when the server refuses it."""
        s = self._s
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = s.smtp_from, to, subject
        message.set_content(body)
        context = ssl.create_default_context()
        if s.smtp_security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds,
                                                    context=context)
        else:
            client = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds)
        with client:
            if s.smtp_security == "starttls":
                client.starttls(context=context)
            if s.smtp_username:
                client.login(s.smtp_username, s.smtp_password)
            client.send_message(message)
        log.info("mail %r sent through %s:%d", subject, s.smtp_host, s.smtp_port)
