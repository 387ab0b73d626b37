"""The seam every delivery adapter implements.

An adapter makes exactly one attempt. It reports what the receiver answered (`Response`);
it raises only for failures that have no HTTP status: `TransientDeliveryError` (network,
timeouts, a busy broker) or `PermanentDeliveryError` (entity missing, message too large,
not authorised). Classifying statuses, retrying and giving up happen elsewhere, once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Delivery:
    """One message as an adapter sends it."""

    message_id: str
    integration: str
    body: bytes
    content_type: str | None = None
    correlation_id: str | None = None
    #: Headers (HTTP) or application properties (queues, Service Bus) to carry along.
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Response:
    """What the receiver answered to one attempt."""

    #: The HTTP status; adapters without statuses report 201 (queued) on success.
    status_code: int
    #: Seconds the receiver asked us to wait (Retry-After), if it said.
    retry_after_s: float | None = None
    #: A short, single-line reason for a failure (the receiver's error text, truncated); never logged.
    detail: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


class Sender(Protocol):
    """Delivers to one endpoint. Long-lived: build once per endpoint, reuse, close at shutdown."""

    #: A short description for logs and attempt history (no secrets: scheme, host and path only).
    target: str

    async def send(self, delivery: Delivery) -> Response: ...

    async def aclose(self) -> None: ...
