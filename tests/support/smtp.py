"""A real local SMTP server (aiosmtpd) that keeps what it receives, for the email verification tests."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.support.ports import free_port


@dataclass
class Inbox:
    """The mails the server accepted, oldest first."""

    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted for delivery"

    async def wait_for(self, to: str, count: int = 1, timeout: float = 10.0) -> list[EmailMessage]:
        """The mails to `to` once there are `count` of them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.messages if m["To"] == to]
            if len(found) >= count or time.monotonic() > deadline:
                assert len(found) >= count, f"expected {count} mail(s) to {to}, got {len(found)}"
                return found
            await asyncio.sleep(0.02)

    @staticmethod
    def link(message: EmailMessage) -> str:
        """The first http(s) link in a plain-text mail."""
        body = message.get_content()
        found = re.search(r"https?://\S+", body)
        assert found, body
        return found.group(0)


@contextlib.contextmanager
def smtp_server() -> Iterator[Inbox]:
    inbox = Inbox("127.0.0.1", free_port())
    controller = Controller(inbox, hostname=inbox.host, port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()
