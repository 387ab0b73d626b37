"""What delivery needs: configs, a sender per endpoint, the error window shared by all instances, and a gate.

On Azure the error window is `TableErrorWindow` (shared/storage/error_window_table.py). The gate is
control's (shared/control/gate.py: pause, circuit breaker, rate limit); without one every message goes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from shared.config.models import Endpoint, IntegrationConfig
from shared.control.models import Release
from shared.delivery.adapters.base import Sender
from shared.delivery.retry import Verdict
from shared.messages.models import Envelope


class ConfigSource(Protocol):
    async def get(self, integration: str) -> IntegrationConfig | None: ...


class SenderSource(Protocol):
    def sender_for(self, endpoint: Endpoint) -> Sender: ...


class ErrorWindow(Protocol):
    """Failures per integration per fixed interval, counted across every instance."""

    async def record(self, integration: str, *, interval_minutes: int, now: datetime) -> None:
        """Count one failure in the interval of `interval_minutes` that contains `now`."""
        ...

    async def count(self, integration: str, *, interval_minutes: int, now: datetime) -> int:
        """Failures counted in the interval that contains `now`."""
        ...

    async def purge_before(self, integration: str, before: datetime) -> int:
        """Drop intervals that started before `before`; how many records went."""
        ...


class Gate(StrEnum):
    #: Attempt it now.
    GO = "go"
    #: Into the hold: the integration is paused (or draining what it held).
    HOLD = "hold"
    #: Over the rate limit for longer than an invocation should wait: back on `inbound`, visible later.
    DEFER = "defer"


def _unpaced(sender: Sender) -> Sender:
    return sender


@dataclass(frozen=True)
class Admission:
    gate: Gate
    #: Seconds a deferred message stays invisible.
    delay_s: int = 0
    #: Wraps the message's senders so every attempt takes its turn under the rate limit.
    pace: Callable[[Sender], Sender] = field(default=_unpaced)


ADMITTED = Admission(Gate.GO)


class DeliveryGate(Protocol):
    """Asked by the engine before it attempts a message, and told what each attempt came to."""

    async def admit(self, envelope: Envelope, config: IntegrationConfig, release: Release | None) -> Admission:
        """Go, hold or defer; `release` says the hold's drain hands the message back (None: it came from `inbound`)."""
        ...

    async def hold(self, envelope: Envelope) -> None:
        """Keep the message in its integration's hold, in arrival order."""
        ...

    async def after_attempt(
        self, envelope: Envelope, config: IntegrationConfig, verdict: Verdict, release: Release | None
    ) -> bool:
        """Count what endpoint retry came to (the circuit breaker); True when a message that would be retried
        goes into the hold instead (the integration was paused meanwhile)."""
        ...


class OpenGate:
    """The gate without control: every message goes, nothing is counted."""

    async def admit(self, envelope: Envelope, config: IntegrationConfig, release: Release | None) -> Admission:
        return ADMITTED

    async def hold(self, envelope: Envelope) -> None:
        raise RuntimeError("the open gate never holds a message")

    async def after_attempt(
        self, envelope: Envelope, config: IntegrationConfig, verdict: Verdict, release: Release | None
    ) -> bool:
        return False
