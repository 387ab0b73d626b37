"""Ingest: turn an HTTP request into an envelope on `inbound` (claim check for large bodies)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from shared.delivery.ports import ConfigSource
from shared.errors import BadParameter, HeadersTooLarge, IntegrationNotFound, PayloadTooLarge, StorageUnavailable
from shared.messages.models import Envelope
from shared.messages.ports import PayloadStore
from shared.messages.shards import InboundShards
from shared.messages.wire import body_fields, pack
from shared.operability.telemetry import current_traceparent, tracer
from shared.recovery.ports import Parking
from shared.values import new_id

#: Request headers that are ours or the platform's, never the message's.
_NOT_FORWARDED = ("x-functions-key", "x-sender", "x-correlation-id", "x-message-id", "x-forwarded-", "x-ms-", "x-arr-")
#: Headers that travel with a message: at most this many, of at most this many bytes together
#: (names and values, UTF-8). They ride in every queue message and failure row of the message,
#: which Storage caps at 64 KiB, so a request over the cap is refused (431) before it is accepted.
MAX_FORWARDED_HEADERS = 32
MAX_FORWARDED_HEADER_BYTES = 8 * 1024


@dataclass(frozen=True)
class Accepted:
    envelope: Envelope
    #: True when `inbound` could not take it and it waits in the recovery flow instead.
    parked: bool


@dataclass(frozen=True)
class IncomingMessage:
    integration: str
    body: bytes
    content_type: str | None
    headers: Mapping[str, str]


def forwarded_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Custom `X-` headers travel with the message to the receiver; everything else stays here.

    HeadersTooLarge (431) when they exceed MAX_FORWARDED_HEADERS or MAX_FORWARDED_HEADER_BYTES.
    """
    forwarded = {
        name.lower(): value
        for name, value in headers.items()
        if name.lower().startswith("x-") and not name.lower().startswith(_NOT_FORWARDED)
    }
    size = sum(len(name.encode()) + len(value.encode()) for name, value in forwarded.items())
    if len(forwarded) > MAX_FORWARDED_HEADERS or size > MAX_FORWARDED_HEADER_BYTES:
        raise HeadersTooLarge(
            f"the X- headers to forward are {len(forwarded)} headers of {size} bytes; a message carries at most "
            f"{MAX_FORWARDED_HEADERS} headers of {MAX_FORWARDED_HEADER_BYTES} bytes together",
            details={
                "field": "headers",
                "count": len(forwarded),
                "size_bytes": size,
                "limit_count": MAX_FORWARDED_HEADERS,
                "limit_bytes": MAX_FORWARDED_HEADER_BYTES,
            },
        )
    return forwarded


class Ingest:
    """Validate a message, wrap it in an envelope and put it on `inbound`; park it when `inbound` is unreachable."""

    def __init__(
        self,
        *,
        configs: ConfigSource,
        inbound: InboundShards,
        payloads: PayloadStore,
        max_message_bytes: int,
        parker: Parking | None = None,
    ) -> None:
        self._configs = configs
        self._inbound = inbound
        self._payloads = payloads
        self._max_message_bytes = max_message_bytes
        self._parker = parker

    async def accept(self, message: IncomingMessage, *, now: datetime) -> Accepted:
        """Validate and enqueue; park when `inbound` is unreachable.

        StorageUnavailable escapes only when both the main flow and the recovery flow failed
        (the caller answers 503 with Retry-After): whatever was answered 202 is somewhere safe.
        """
        with tracer.start_as_current_span("rebound.ingest", attributes={"rebound.integration": message.integration}):
            if len(message.body) > self._max_message_bytes:
                raise PayloadTooLarge(
                    f"message is {len(message.body)} bytes; the limit is {self._max_message_bytes}",
                    details={"limit_bytes": self._max_message_bytes, "size_bytes": len(message.body)},
                )
            forwarded = forwarded_headers(message.headers)
            try:
                config = await self._configs.get(message.integration)
            except StorageUnavailable:
                if self._parker is None:
                    raise
                config = None  # cannot check during an outage: park it; the engine checks on reinsertion
            else:
                if config is None:
                    raise IntegrationNotFound(message.integration)
            headers = {k.lower(): v for k, v in message.headers.items()}
            # Present but empty is a mistake to report, not a reason to make one up (the schema says 1-128 chars).
            message_id = headers["x-message-id"] if "x-message-id" in headers else new_id()
            try:
                envelope = Envelope(
                    traceparent=current_traceparent(),
                    id=message_id,
                    integration=config.id if config else message.integration,
                    sender=headers.get("x-sender") or (config.sender if config else None) or None,
                    receiver=(config.receiver if config else None) or None,
                    correlation_id=headers.get("x-correlation-id") or message_id,
                    content_type=message.content_type,
                    headers=forwarded,
                    received_at=now,
                    **body_fields(message.body, message.content_type),
                )
            except ValidationError as exc:
                bad = str(exc.errors()[0]["loc"][0]) if exc.errors() else "header"
                header = {"id": "X-Message-Id", "correlation_id": "X-Correlation-Id"}.get(bad, bad)
                raise BadParameter(header, exc.errors()[0]["msg"]) from exc
            try:
                _, text = await pack(envelope, self._payloads)
                await self._inbound.send(envelope.integration, text)
            except StorageUnavailable as exc:
                if self._parker is None:
                    raise
                await self._parker.park_envelope(envelope, f"ingest: {exc.message}")
                return Accepted(envelope, parked=True)
            return Accepted(envelope, parked=False)
