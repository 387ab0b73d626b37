"""Catastrophic recovery: the queues of recovery material, what a sweep did, and what the flow carries."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from shared.values import Count, FrozenModel, UtcDatetime

Flow = Literal["inbound", "jobs"]
#: What a queue of recovery material is: the recovery flow, a host poison queue, or an inbound shard
#: beyond INBOUND_SHARDS (left with messages when the setting was lowered; no trigger reads it).
SourceKind = Literal["recovery", "poison", "retired"]


class RecoveryQueueStatus(FrozenModel):
    """One queue of recovery material: the recovery flow itself, or a host poison queue."""

    name: str
    #: `retired`: an inbound shard beyond INBOUND_SHARDS that still holds messages (docs/scaling.md).
    kind: SourceKind
    count: Count
    #: Age of the oldest waiting message in seconds; null when empty or not knowable (Service Bus).
    oldest_age_s: Annotated[float, Field(ge=0)] | None = None


class SweepResult(FrozenModel):
    """What one recovery sweep did (timer or `POST /recovery/replay`)."""

    started_at: UtcDatetime
    finished_at: UtcDatetime
    trigger: Literal["timer", "manual"]
    #: False when the health check failed and nothing was moved.
    healthy: bool
    #: Messages put back on their flow with recovery_count+1 (from a retired inbound shard: unchanged).
    reinserted: Count = 0
    #: Messages past RECOVERY_MAX_REINSERTS, recorded as `catastrophic` failures.
    gave_up: Count = 0
    #: Messages left in place because something failed mid-way (they stay for the next sweep).
    errors: Count = 0
    #: Per source queue: how many left it.
    by_queue: dict[str, int] = Field(default_factory=dict)
    #: Active jobs whose page message had been lost and was re-enqueued.
    jobs_resumed: Count = 0
    reason: str | None = None


class RecoveryStatus(FrozenModel):
    backend: Literal["storage", "servicebus"]
    queues: list[RecoveryQueueStatus]
    last_sweep: SweepResult | None = None
    #: What storage did not answer for just now: queue names (left out of `queues`) and `last_sweep`
    #: (null then, though a sweep may have run). Empty when every figure is known: a reader must not
    #: take a missing queue or sweep for "nothing waiting" or "never swept".
    unknown: list[str] = Field(default_factory=list)


class ParkedMessage(BaseModel):
    """What the recovery flow carries: the original queue text and where it belongs."""

    flow: Flow
    text: str
    reason: str
    parked_at: UtcDatetime
    #: Name of the body kept beside the flow when it was too large to park inline.
    body_blob: str | None = None


def stable_id(text: str) -> str:
    """An id for a minimal envelope that stays the same however often it is parked and swept."""
    return uuid.uuid5(uuid.NAMESPACE_OID, text).hex
