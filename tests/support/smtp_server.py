"""A real SMTP server on 127.0.0.1 for the email alert tests (aiosmtpd, in its own thread).

It accepts every message and keeps it (sender, recipients, the parsed message), so a test reads what
Rebound sent the way a mailbox would show it.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Mail:
    sender: str
    recipients: list[str]
    message: Message

    @property
    def subject(self) -> str:
        """Unfolded (a long Subject travels folded over several lines)."""
        return " ".join(str(self.message["Subject"]).split())

    @property
    def text(self) -> str:
        payload = self.message.get_payload(decode=True)
        return payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else str(payload)


class _Handler:
    def __init__(self, mails: list[Mail], lock: threading.Lock) -> None:
        self._mails = mails
        self._lock = lock

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = Mail(envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content))
        with self._lock:
            self._mails.append(mail)
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mails: list[Mail] = []
        self.port = _free_port()
        self._controller = Controller(_Handler(self._mails, self._lock), hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    @property
    def mails(self) -> list[Mail]:
        with self._lock:
            return list(self._mails)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
