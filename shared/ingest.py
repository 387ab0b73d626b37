"""Ingest: turn an HTTP request into an envelope on `inbound` (claim check for large bodies)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from shared.engine import ConfigSource
from shared.envelopes import body_fields, pack
from shared.errors import BadParameter, IntegrationNotFound, PayloadTooLarge
from shared.models import Envelope, new_id
from shared.storage.payloads import PayloadStore
from shared.storage.queues import QueueGateway

#: Request headers that are ours or the platform's, never the message's.
_NOT_FORWARDED = ("x-functions-key", "x-sender", "x-correlation-id", "x-message-id", "x-forwarded-", "x-ms-", "x-arr-")


@dataclass(frozen=True)
class IncomingMessage:
    integration: str
    body: bytes
    content_type: str | None
    headers: Mapping[str, str]


def forwarded_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Custom `X-` headers travel with the message to the receiver; everything else stays here."""
    return {
        name.lower(): value
        for name, value in headers.items()
        if name.lower().startswith("x-") and not name.lower().startswith(_NOT_FORWARDED)
    }


async def accept_message(
    message: IncomingMessage,
    *,
    configs: ConfigSource,
    queues: QueueGateway,
    inbound_queue: str,
    payloads: PayloadStore,
    max_message_bytes: int,
    now: datetime,
) -> Envelope:
    if len(message.body) > max_message_bytes:
        raise PayloadTooLarge(
            f"message is {len(message.body)} bytes; the limit is {max_message_bytes}",
            details={"limit_bytes": max_message_bytes, "size_bytes": len(message.body)},
        )
    config = await configs.get(message.integration)
    if config is None:
        raise IntegrationNotFound(message.integration)
    headers = {k.lower(): v for k, v in message.headers.items()}
    message_id = headers.get("x-message-id") or new_id()
    try:
        envelope = Envelope(
            id=message_id,
            integration=config.id,
            sender=headers.get("x-sender") or config.sender or None,
            receiver=config.receiver or None,
            correlation_id=headers.get("x-correlation-id") or message_id,
            content_type=message.content_type,
            headers=forwarded_headers(message.headers),
            received_at=now,
            **body_fields(message.body, message.content_type),
        )
    except ValidationError as exc:
        bad = str(exc.errors()[0]["loc"][0]) if exc.errors() else "header"
        header = {"id": "X-Message-Id", "correlation_id": "X-Correlation-Id"}.get(bad, bad)
        raise BadParameter(header, exc.errors()[0]["msg"]) from exc
    _, text = await pack(envelope, payloads)
    await queues.send(inbound_queue, text)
    return envelope
