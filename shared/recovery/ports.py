"""What recovery needs, and what the rest of the domain needs from it.

`Parking` is the seam ingest, the engine and the job runner depend on: somewhere to park a message
(`Parker` implements it), so none of them depends on the sweeper, which itself fails and resumes jobs
through `shared.jobs.ports.JobControl`.
The rest is what the sweep reads and writes: the recovery flow (a separate failure domain), the
queues it drains, the last sweep's result and a check that the main flow can take messages back.
On Azure: shared/storage/recovery_queue.py, recovery_service_bus.py, sweep_state.py, flow_probe.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from shared.messages.models import Envelope
from shared.recovery.models import Flow, RecoveryQueueStatus, SourceKind, SweepResult


class Parking(Protocol):
    async def park_envelope(self, envelope: Envelope, reason: str) -> None:
        """Park a message for `inbound`; StorageUnavailable when the recovery flow fails too."""
        ...

    async def park_text(self, flow: Flow, text: str, reason: str, *, message_id: str = "") -> None:
        """Park a raw queue message as it was received."""
        ...


@dataclass(frozen=True)
class RecoveryMessage:
    """One message the sweep received: its text, when it was enqueued, and a handle (opaque to the
    domain) to delete it once it has been moved on."""

    text: str
    enqueued_at: datetime | None
    handle: object


class MessageSource(Protocol):
    """A queue the sweep drains: the recovery flow itself, or a queue the host gave up on."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> SourceKind: ...

    @property
    def flow(self) -> Flow:
        """The flow a poisoned message goes back to (a parked message names its own)."""
        ...

    async def receive(self, max_messages: int, *, lease_s: int) -> list[RecoveryMessage]:
        """Up to `max_messages`, hidden from other receivers for `lease_s` while they are moved."""
        ...

    async def delete(self, message: RecoveryMessage) -> None:
        """Take a received message off the queue; deleting one that is gone already does nothing.
        `ConcurrencyConflict` when its lease lapsed and another receiver took it: it is theirs now."""
        ...

    async def status(self) -> RecoveryQueueStatus: ...


class RecoveryFlow(MessageSource, Protocol):
    """The recovery flow: a separate failure domain that takes parked messages."""

    @property
    def backend(self) -> Literal["storage", "servicebus"]: ...

    @property
    def max_text_bytes(self) -> int:
        """The largest message text the flow takes."""
        ...

    async def send(self, text: str, *, delay_s: int) -> None:
        """Park `text`, visible to the sweep after `delay_s`."""
        ...

    async def probe(self) -> None:
        """Prove the flow answers; `StorageUnavailable` when it does not."""
        ...

    async def put_body(self, name: str, data: bytes, content_type: str | None) -> bool:
        """Keep a large body beside the flow; False when this backend cannot."""
        ...

    async def take_body(self, name: str) -> bytes | None: ...

    async def drop_body(self, name: str) -> None: ...

    def extra_sources(self) -> list[MessageSource]:
        """More queues that belong to this flow (Service Bus: its dead-letter sub-queue)."""
        ...

    async def close(self) -> None: ...


class SweepState(Protocol):
    """The last sweep's result, for GET /recovery."""

    async def last(self) -> SweepResult | None: ...

    async def remember(self, result: SweepResult) -> None: ...


class MainFlowProbe(Protocol):
    async def check(self) -> None:
        """Return when the main flow can take messages back; raise a `ReboundError` saying why not."""
        ...
