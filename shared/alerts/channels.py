"""Where alerts go: a webhook (JSON, signed), a Teams Workflows webhook (an Adaptive Card), email.

HTTP channels go through the vetted client (shared/delivery/adapters/egress_network.py): the same
egress policy as endpoints, checked on every connection. Email goes through an `EmailSender`: Azure
Communication Services in Azure (identity-based, `AcsEmail`) or an SMTP server locally (`SmtpEmail`).
Each notice is tried a few times with a short backoff; the caller records whether it went out, and
the alert timer tries failed notices again later.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol

import aiosmtplib
import httpx

from shared.alerts.models import Alert, AlertRule, EmailChannel, Notice, TeamsChannel, WebhookChannel
from shared.delivery.adapters.http import one_line
from shared.errors import ConfigError, EgressRefused
from shared.logs import log_event
from shared.sensitive import safe_url

logger = logging.getLogger("rebound.alerts")

SIGNATURE_HEADER = "X-Rebound-Signature"
TIMESTAMP_HEADER = "X-Rebound-Timestamp"
EVENT_HEADER = "X-Rebound-Event"
#: Attempts per notice, and the waits between them (the alert timer tries a failed notice again later).
ATTEMPT_DELAYS_S = (0.0, 1.0, 3.0)
TIMEOUT_S = 10.0
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


@dataclass(frozen=True)
class Notification:
    notice: Notice
    rule: AlertRule
    alert: Alert
    #: Where the portal shows what the alert is about; None when the app does not know its own address.
    portal_url: str | None

    def payload(self) -> dict[str, Any]:
        """The webhook's JSON: the rule, integration, count, window, up to five samples (no bodies), a link."""
        alert, rule = self.alert, self.rule
        return {
            "notice": self.notice.value,
            "alert_id": alert.id,
            "rule": {
                "id": rule.id,
                "kind": rule.kind.value,
                "integration": rule.integration,
                "threshold": rule.threshold,
                "window_minutes": rule.window_minutes if rule.kind.windowed else None,
                "cooldown_minutes": rule.cooldown_minutes,
            },
            "integration": alert.integration,
            "count": alert.count,
            "window_minutes": alert.window_minutes,
            "fired_at": alert.fired_at.isoformat(),
            "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
            "samples": [sample.model_dump(mode="json", exclude_none=True) for sample in alert.samples],
            "portal_url": self.portal_url,
            "test": alert.test,
        }

    def title(self) -> str:
        where = self.alert.integration or "all integrations"
        what = {
            "failure_count": "failures",
            "catastrophic": "catastrophic failures",
            "circuit_open": "circuit breakers open",
            "job_failed": "jobs failed",
            "recovery_backlog": "messages waiting in recovery",
            "pickup_failing": "failed pickup runs in a row",
        }[self.rule.kind.value]
        prefix = {Notice.FIRED: "Alert", Notice.RESOLVED: "Resolved", Notice.TEST: "Test alert"}[self.notice]
        return f"[Rebound] {prefix}: {self.alert.count} {what} ({where}), rule {self.rule.id}"

    def text(self) -> str:
        lines = [self.title(), ""]
        alert = self.alert
        if alert.window_minutes:
            lines.append(f"Window: the last {alert.window_minutes} min; threshold {self.rule.threshold}.")
        else:
            lines.append(f"Threshold {self.rule.threshold}.")
        lines.append(f"Fired at {alert.fired_at.isoformat()}.")
        if alert.resolved_at:
            lines.append(f"Resolved at {alert.resolved_at.isoformat()}.")
        if alert.samples:
            lines += ["", "Samples:"]
            lines += [f"- {s.integration or '-'} {s.at.isoformat() if s.at else ''} {s.summary}" for s in alert.samples]
        if self.portal_url:
            lines += ["", f"Open: {self.portal_url}"]
        return "\n".join(lines)


class EmailSender(Protocol):
    async def send(self, to: list[str], subject: str, text: str) -> None:
        """Send or raise (any exception: the notice failed)."""
        ...


class AlertChannels:
    """Sends one notice to a rule's channel, with retries; returns the last error, or None when it went out."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        email: EmailSender | None,
        secret: Callable[[str], str | None],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        delays_s: tuple[float, ...] = ATTEMPT_DELAYS_S,
    ) -> None:
        self._http = http
        self._email = email
        self._secret = secret
        self._sleep = sleep
        self._clock = clock
        self._delays_s = delays_s

    async def send(self, notification: Notification) -> str | None:
        error: str | None = None
        for delay in self._delays_s:
            if delay:
                await self._sleep(delay)
            try:
                await self._send_once(notification)
                return None
            except (ConfigError, EgressRefused) as exc:
                # Nothing a retry changes (a refused address, a setting that is not allowed).
                return one_line(exc.message)
            except Exception as exc:
                error = one_line(str(exc) or type(exc).__name__)
        log_event(
            logger, "alert.notice_failed", level=logging.WARNING, rule=notification.rule.id,
            notice=notification.notice.value, channel=notification.rule.channel.kind, error=error,
        )  # fmt: skip
        return error

    async def _send_once(self, notification: Notification) -> None:
        channel = notification.rule.channel
        if isinstance(channel, WebhookChannel):
            body = json.dumps(notification.payload(), separators=(",", ":")).encode()
            headers = {"Content-Type": "application/json", EVENT_HEADER: f"alert.{notification.notice.value}"}
            if channel.secret_setting:
                headers.update(self.signature(channel.secret_setting, body))
            await self._post(str(channel.url), body, headers)
        elif isinstance(channel, TeamsChannel):
            body = json.dumps(adaptive_card(notification), separators=(",", ":")).encode()
            await self._post(str(channel.url), body, {"Content-Type": "application/json"})
        elif isinstance(channel, EmailChannel):
            if self._email is None:
                raise ConfigError("email alerts are off: set ALERT_EMAIL_BACKEND to smtp or acs")
            await self._email.send(list(channel.to), notification.title(), notification.text())

    def signature(self, setting: str, body: bytes) -> dict[str, str]:
        """`X-Rebound-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` and the timestamp it covers."""
        secret = self._secret(setting)
        if not secret:
            raise ConfigError(f"secret_setting {setting!r} is not an allowed app setting with a value")
        timestamp = str(int(self._clock()))
        digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: f"sha256={digest}"}

    async def _post(self, url: str, body: bytes, headers: Mapping[str, str]) -> None:
        try:
            answer = await self._http.post(url, content=body, headers=dict(headers), timeout=TIMEOUT_S)
        except EgressRefused:
            raise
        except httpx.HTTPError as exc:
            raise RuntimeError(f"{safe_url(url)}: {type(exc).__name__} {exc}") from None
        if not 200 <= answer.status_code < 300:
            detail = answer.content[:2000].decode("utf-8", errors="replace")
            raise RuntimeError(f"{safe_url(url)} answered HTTP {answer.status_code}: {detail}")


def verify_signature(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver does: recompute and compare in constant time (documented in docs/alerts.md)."""
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def adaptive_card(notification: Notification) -> dict[str, Any]:
    """The message a Teams Workflows webhook posts: one Adaptive Card (schema 1.4, which Teams renders)."""
    alert = notification.alert
    facts = [
        {"title": "Rule", "value": f"{notification.rule.id} ({notification.rule.kind.value})"},
        {"title": "Integration", "value": alert.integration or "all"},
        {"title": "Count", "value": f"{alert.count} (threshold {notification.rule.threshold})"},
        {"title": "Fired", "value": alert.fired_at.isoformat()},
    ]
    if alert.window_minutes:
        facts.insert(3, {"title": "Window", "value": f"{alert.window_minutes} min"})
    if alert.resolved_at:
        facts.append({"title": "Resolved", "value": alert.resolved_at.isoformat()})
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "size": "Medium",
            "weight": "Bolder",
            "wrap": True,
            "text": notification.title(),
            "color": "Good" if notification.notice is Notice.RESOLVED else "Attention",
        },
        {"type": "FactSet", "facts": facts},
    ]
    for sample in alert.samples:
        body.append(
            {"type": "TextBlock", "wrap": True, "isSubtle": True, "text": f"{sample.integration} · {sample.summary}"}
        )
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if notification.portal_url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open in Rebound", "url": notification.portal_url}]
    return {
        "type": "message",
        "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}],
    }


class SmtpEmail:
    """Email through an SMTP server (locally; tests run a real one, aiosmtpd)."""

    def __init__(self, *, host: str, port: int, sender: str, timeout_s: float = TIMEOUT_S) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._timeout_s = timeout_s

    async def send(self, to: list[str], subject: str, text: str) -> None:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = ", ".join(to)
        message["Subject"] = subject
        message.set_content(text)
        await aiosmtplib.send(message, hostname=self._host, port=self._port, timeout=self._timeout_s, start_tls=False)


class EmailClient(Protocol):
    """The part of `azure.communication.email.aio.EmailClient` Rebound uses (built in shared/storage/clients.py)."""

    async def begin_send(self, message: dict[str, Any], **kwargs: Any) -> Any: ...

    async def close(self) -> None: ...


class AcsEmail:
    """Email through Azure Communication Services, with the app's managed identity (no keys)."""

    def __init__(self, client: EmailClient, *, sender: str) -> None:
        self._client = client
        self._sender = sender

    async def send(self, to: list[str], subject: str, text: str) -> None:
        message = {
            "senderAddress": self._sender,
            "recipients": {"to": [{"address": address} for address in to]},
            "content": {"subject": subject, "plainText": text},
        }
        poller = await self._client.begin_send(message)
        result = await poller.result()
        status = str((result or {}).get("status", "")).lower()
        if status and status != "succeeded":
            raise RuntimeError(f"Azure Communication Services: {status} {(result or {}).get('error')}")

    async def close(self) -> None:
        await self._client.close()
